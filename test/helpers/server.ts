/**
 * Starts real corral servers for tests: in-process on a random 127.0.0.1 port with a fresh
 * data directory, or as a child process (`node bin/corral.js serve`) for tests that kill
 * and restart it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/core/config.js';
import { startServer, type RunningServer } from '../../src/server.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'bin/corral.js');
export const ADMIN_PASSWORD = 'admin-password-for-tests';

export async function tempDir(prefix = 'corral-test-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

export interface TestServer extends RunningServer {
  data: string;
  /** A bearer token for the first admin. */
  adminToken: string;
  /** Stops the server and removes its data directory (unless `keepData`). */
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

/** Starts corral in this process. `config` is merged over the test defaults. */
export async function startTestServer(config: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<TestServer> {
  const data = (config.data as string | undefined) ?? (await tempDir());
  const server = await startServer(
    loadConfig({
      env,
      flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', adminPassword: ADMIN_PASSWORD, ...config, data },
    }),
  );
  const adminToken = await login(server.url, 'admin', ADMIN_PASSWORD).then((s) => createToken(server.url, s, 'test-admin'));
  return {
    ...server,
    data,
    adminToken,
    async stop(opts = {}) {
      await server.close();
      if (!opts.keepData) await rm(data, { recursive: true, force: true });
    },
  };
}

export interface Session {
  cookie: string;
  csrfToken: string;
}

export async function login(url: string, name: string, password: string): Promise<Session> {
  const res = await fetch(`${url}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password }),
  });
  if (res.status !== 200) throw new Error(`login as ${name} failed: ${res.status} ${await res.text()}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const { csrfToken } = (await res.json()) as { csrfToken: string };
  return { cookie, csrfToken };
}

export async function createToken(url: string, session: Session, name: string, scopes?: string[]): Promise<string> {
  const res = await fetch(`${url}/api/v1/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: session.cookie, 'x-csrf-token': session.csrfToken },
    body: JSON.stringify({ name, ...(scopes && { scopes }) }),
  });
  if (res.status !== 201) throw new Error(`token creation failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/** Creates a user (as admin) and returns a token for them with every user scope. */
export async function createUser(server: TestServer, name: string, password = `${name}-password`): Promise<string> {
  const res = await api(server, server.adminToken, 'POST', '/api/v1/users', { name, password });
  if (res.status !== 201) throw new Error(`user creation failed: ${res.status} ${JSON.stringify(res.body)}`);
  return createToken(server.url, await login(server.url, name, password), `${name}-token`);
}

/** A JSON API call with a bearer token. */
export async function api(
  server: { url: string },
  token: string | undefined,
  method: string,
  urlPath: string,
  body?: unknown,
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${server.url}${urlPath}`, {
    method,
    headers: {
      ...(token && { authorization: `Bearer ${token}` }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export interface ChildServer {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Sends a signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `corral serve` as a child process (as another user with `as`) and waits until it
 * listens. `as.detached`: in its own process group, so kill(-pid) reaches it and everything
 * it started in its group (and not the test runner).
 */
export async function spawnServer(
  data: string,
  env: NodeJS.ProcessEnv = {},
  args: string[] = [],
  as: { uid?: number; gid?: number; detached?: boolean } = {},
): Promise<ChildServer> {
  const child = spawn(process.execPath, [CLI, 'serve', '--data', data, '--port', '0', ...args], {
    ...as,
    env: { ...process.env, CORRAL_ADMIN_PASSWORD: ADMIN_PASSWORD, CORRAL_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    // Given up on: killed, so a slow start never leaves a server (and its workloads) behind.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start:\n${out}`));
    }, 30_000);
    const onData = () => {
      const m = /"url":"(http[^"]+)".*"msg":"corral is listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${out}`));
    });
  });
  return {
    child,
    url,
    output: () => out,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
