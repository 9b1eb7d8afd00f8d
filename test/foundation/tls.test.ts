/** `corral cert` + `corral serve --tls-cert/--tls-key`: HTTPS, Secure cookies, and the CLI with -k. */
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../cli/run-cli.js';
import { ADMIN_PASSWORD, spawnServer, tempDir, type ChildServer } from '../helpers/server.js';

// Tests spawn the CLI several times: allow for a busy machine.
vi.setConfig({ testTimeout: 120_000 });

let dir: string;
let child: ChildServer;
const trustAll = new Agent({ connect: { rejectUnauthorized: false } });

beforeAll(async () => {
  dir = await tempDir('corral-tls-');
  const cert = await runCli(['cert', '--out', path.join(dir, 'tls'), '--host', 'localhost', '--json']);
  expect(cert.code, cert.stderr).toBe(0);
  const { key, cert: certFile } = JSON.parse(cert.stdout) as { key: string; cert: string };
  child = await spawnServer(path.join(dir, 'data'), {}, ['--tls-cert', certFile, '--tls-key', key]);
});
afterAll(async () => {
  await child?.kill();
  await trustAll.close();
  await rm(dir, { recursive: true, force: true });
});

describe('TLS', () => {
  it('writes the key with mode 0600 and refuses to overwrite without --force', async () => {
    expect((await stat(path.join(dir, 'tls/key.pem'))).mode & 0o777).toBe(0o600);
    const again = await runCli(['cert', '--out', path.join(dir, 'tls')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^file_exists: .*key\.pem exists; pass --force/);
  });

  it('serves HTTPS and sets the Secure flag on the session cookie', async () => {
    expect(child.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await request(`${child.url}/healthz`, { dispatcher: trustAll });
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    const res = await request(`${child.url}/api/v1/login`, {
      method: 'POST',
      dispatcher: trustAll,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'admin', password: ADMIN_PASSWORD }),
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^corral_session=/);
    expect(cookie).toMatch(/;\s*Secure/i);
    expect(cookie).toMatch(/HttpOnly/i);
  });

  it('does not speak plain HTTP on the TLS port', async () => {
    await expect(fetch(child.url.replace('https:', 'http:') + '/healthz')).rejects.toThrow();
  });

  it('lets the CLI log in with -k, remembers it, and explains the error without -k', async () => {
    const env = { XDG_CONFIG_HOME: path.join(dir, 'xdg'), CORRAL_URL: undefined, CORRAL_TOKEN: undefined, CORRAL_INSECURE: undefined };
    const refused = await runCli(['login', child.url, '--password-stdin'], { env, input: `${ADMIN_PASSWORD}\n` });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^tls_untrusted: .*pass -k/);

    const ok = await runCli(['login', '-k', child.url, '--password-stdin'], { env, input: `${ADMIN_PASSWORD}\n` });
    expect(ok.code, ok.stderr).toBe(0);
    const ls = await runCli(['user', 'ls', '--json'], { env });
    expect(ls.code, ls.stderr).toBe(0);
    expect((JSON.parse(ls.stdout) as { name: string }[]).map((u) => u.name)).toContain('admin');
  });
});
