/**
 * Starts real corral servers for tests: in-process on a random 127.0.0.1 port with a fresh
 * data directory, or as a child process (`node bin/corral.js serve`) for tests that kill
 * and restart it.
 *
 * Servers run the default, the keeper on (drivers.process.keeper): their workloads are the
 * keeper's children and outlive the server. So a test server's stop() also stops its data
 * dir's keeper (and with it every workload left), and when a test file ends every keeper of
 * a data dir this file served is stopped (stopServedKeepers, registered by keeper-cleanup.ts,
 * a vitest setup file): no test leaves workloads running. No vitest import here: benchmarks
 * use these helpers too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

/** For the tests that check what happens without the keeper (workloads die with the server): merge into spawnServer's env. */
export const KEEPER_OFF_ENV = { CORRAL_DRIVERS__PROCESS__KEEPER: 'false' };

/** Data dirs this test file ran servers on: their keepers are stopped when the file ends. */
const served = new Set<string>();

/** Stops the keeper of every data dir a server was started on since the last call. */
export async function stopServedKeepers(): Promise<void> {
  await Promise.all([...served].map((data) => stopKeeper(data)));
  served.clear();
}

/**
 * The keeper processes of `data` (node … keeper.{js,ts} DATA/keeper), found by their command
 * line: the data dir, and with it DATA/keeper/pid, may already be removed.
 */
export function keeperPids(data: string): number[] {
  const dir = path.join(data, 'keeper');
  const out: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv.at(-2) === dir && /keeper\.(js|ts)$/.test(argv.at(-3) ?? '')) out.push(Number(pid));
  }
  return out;
}

/**
 * Stops `data`'s keeper the way an admin would (SIGTERM: each workload gets its stop signal
 * and grace, then SIGKILL) and waits until it is gone; SIGKILL after `ms`.
 */
export async function stopKeeper(data: string, ms = 30_000): Promise<void> {
  const pids = keeperPids(data);
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  const until = Date.now() + ms;
  while (pids.some(alive)) {
    if (Date.now() > until) for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface TestServer extends RunningServer {
  data: string;
  /** A bearer token for the first admin. */
  adminToken: string;
  /**
   * Stops the server, then its keeper (its workloads get their stop signal: a next server on
   * `keepData` starts them again, as before the keeper; call `close()` instead to test adoption),
   * and removes its data directory (unless `keepData`).
   */
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

/** Starts corral in this process. `config` is merged over the test defaults. */
export async function startTestServer(config: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<TestServer> {
  const data = (config.data as string | undefined) ?? (await tempDir());
  served.add(data);
  const server = await startServer(
    loadConfig({
      env,
      flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', adminPassword: ADMIN_PASSWORD, ...config, data },
    }),
  );
  // Named per server: servers sharing one database (a cluster test) share the admin's tokens.
  const adminToken = await login(server.url, 'admin', ADMIN_PASSWORD).then((s) => createToken(server.url, s, `test-admin-${path.basename(data)}`));
  return {
    ...server,
    data,
    adminToken,
    async stop(opts = {}) {
      // close() detaches kept workloads (as a SIGTERM does): the keeper still runs them, and
      // holds files in the data dir (a test may unmount it next).
      await server.close();
      await stopKeeper(data);
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
  served.add(data);
  const child = spawn(process.execPath, [CLI, 'serve', '--data', data, '--port', '0', ...args], {
    ...as,
    env: { ...process.env, CORRAL_ADMIN_PASSWORD: ADMIN_PASSWORD, CORRAL_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  // The last MB or two: a benchmark's server can log for a long time.
  const onOutput = (d: Buffer) => {
    out += d.toString();
    if (out.length > 2e6) out = out.slice(-1e6);
  };
  child.stdout!.on('data', onOutput);
  child.stderr!.on('data', onOutput);
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
