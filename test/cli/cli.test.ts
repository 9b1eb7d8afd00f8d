/** The `corral` CLI against a live server: login, users, tokens, errors, help and version. */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { VERSION } from '../../src/core/version.js';
import { ADMIN_PASSWORD, createToken, createUser, login, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { runCli } from './run-cli.js';

// Each test spawns several CLI processes: allow for a busy machine.
vi.setConfig({ testTimeout: 120_000 });

let server: TestServer;
let home: string;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  server = await startTestServer();
  home = await tempDir('corral-cli-');
  env = { XDG_CONFIG_HOME: path.join(home, 'xdg'), CORRAL_URL: undefined, CORRAL_TOKEN: undefined, CORRAL_INSECURE: undefined };
});
afterAll(async () => {
  await server.stop();
  await rm(home, { recursive: true, force: true });
});

const corral = (args: string[], input?: string, extraEnv: NodeJS.ProcessEnv = {}) => runCli(args, { env: { ...env, ...extraEnv }, input });

describe('help and version', () => {
  it('prints the version', async () => {
    const r = await corral(['--version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it.each([
    ['serve'], ['config'], ['cert'], ['doctor'], ['login'], ['logout'], ['user'], ['user', 'add'], ['user', 'ls'], ['user', 'rm'],
    ['user', 'passwd'], ['token'], ['token', 'create'], ['token', 'ls'], ['token', 'revoke'], ['token', 'inspect'],
  ])('corral %s --help', async (...cmd) => {
    const r = await corral([...cmd, '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Usage: corral ${cmd.join(' ')}`);
  });
});

describe('before logging in', () => {
  it('says how to log in, as CODE: message with exit 1', async () => {
    const r = await corral(['user', 'ls']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('not_logged_in: not logged in: run `corral login URL` (or set CORRAL_URL and CORRAL_TOKEN)\n');
  });

  it('reports a wrong password as the server says it', async () => {
    const r = await corral(['login', server.url, '--user', 'admin', '--password-stdin'], 'not-the-password\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('bad_credentials: wrong user name or password\n');
  });

  it('reports an unreachable server', async () => {
    const r = await corral(['login', 'http://127.0.0.1:1', '--password-stdin'], 'whatever\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^unreachable: cannot reach http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
  });

  it('refuses to prompt without a terminal', async () => {
    const r = await corral(['login', server.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^no_tty: /);
  });
});

describe('logged in as admin', () => {
  beforeAll(async () => {
    const r = await corral(['login', `${server.url}/`, '--password-stdin', '--json'], `${ADMIN_PASSWORD}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ url: server.url, user: 'admin', role: 'admin' });
  });

  it('stored the URL and a token in a private file', async () => {
    const file = path.join(home, 'xdg/corral/config.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    const stored = JSON.parse(await readFile(file, 'utf8')) as { url: string; token: string; insecure: boolean };
    expect(stored).toMatchObject({ url: server.url, insecure: false });
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${stored.token}` } });
    expect(me.status).toBe(200);
  });

  it('adds, lists and removes users', async () => {
    const add = await corral(['user', 'add', 'quinn', '--password-stdin', '--credits', '10'], 'quinn-password\n');
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toBe('created user "quinn"\n');
    const ls = await corral(['user', 'ls']);
    expect(ls.stdout).toMatch(/^NAME\s+ROLE\s+CREDITS\s+CREATED\n/);
    expect(ls.stdout).toMatch(/\nquinn\s+user\s+10\s+\d{4}-/);
    const json = JSON.parse((await corral(['user', 'ls', '--json'])).stdout) as { name: string; credits: number }[];
    expect(json.find((u) => u.name === 'quinn')?.credits).toBe(10);
    await login(server.url, 'quinn', 'quinn-password');

    const dup = await corral(['user', 'add', 'quinn', '--password-stdin'], 'quinn-password\n');
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe('user_exists: a user named "quinn" already exists\n');
    const rm1 = await corral(['user', 'rm', 'quinn', '--json']);
    expect(rm1.code, rm1.stderr).toBe(0);
    expect(JSON.parse(rm1.stdout)).toEqual({ deleted: 'quinn' });
    const rm2 = await corral(['user', 'rm', 'quinn']);
    expect(rm2.code).toBe(1);
    expect(rm2.stderr).toBe('user_not_found: no user named "quinn"\n');
  });

  it('passes server validation errors through', async () => {
    const r = await corral(['user', 'add', 'Bad Name', '--password-stdin'], 'long-enough-pw\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^validation_failed: .*name/);
    const role = await corral(['user', 'add', 'rita', '--role', 'root', '--password-stdin'], 'long-enough-pw\n');
    expect(role.code).toBe(1);
    expect(role.stderr).toBe('bad_input: --role must be admin or user\n');
  });

  it('resets another user’s password and changes its own', async () => {
    await createUser(server, 'sam');
    const reset = await corral(['user', 'passwd', 'sam', '--password-stdin'], 'sam-new-password\n');
    expect(reset.code, reset.stderr).toBe(0);
    await login(server.url, 'sam', 'sam-new-password');

    const wrong = await corral(['user', 'passwd', '--password-stdin'], 'not-current\nadmin-next-password\n');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe('bad_credentials: current password is wrong\n');
    const own = await corral(['user', 'passwd', '--password-stdin'], `${ADMIN_PASSWORD}\nadmin-next-password\n`);
    expect(own.code, own.stderr).toBe(0);
    await login(server.url, 'admin', 'admin-next-password');
    // Put it back for the other tests.
    expect((await corral(['user', 'passwd', '--password-stdin'], `admin-next-password\n${ADMIN_PASSWORD}\n`)).code).toBe(0);
    // A changed password revokes the user's other tokens (the CLI's own, which made the change,
    // stays): the test's admin token is one of them.
    server.adminToken = await createToken(server.url, await login(server.url, 'admin', ADMIN_PASSWORD), 'test-admin-2');
  });

  it('creates, lists, inspects and revokes tokens', async () => {
    const created = await corral(['token', 'create', 'deploy', '--scope', 'jobs:write', 'instances:read', '--ttl', '2h']);
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token.split('.')).toHaveLength(3);

    const inspect = await corral(['token', 'inspect', token, '--json']);
    expect(inspect.code, inspect.stderr).toBe(0);
    const info = JSON.parse(inspect.stdout) as { user: string; scopes: string[]; token: { id: string; name: string; expiresAt: string } };
    expect(info).toMatchObject({ user: 'admin', role: 'admin', token: { name: 'deploy' } });
    expect(info.scopes.sort()).toEqual(['instances:read', 'jobs:write']);
    const ttl = Date.parse(info.token.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(7000_000);
    expect(ttl).toBeLessThan(7300_000);
    const text = await corral(['token', 'inspect', token]);
    expect(text.stdout).toMatch(/^user:\s+admin \(admin\)\nscopes:\s+.*jobs:write/);

    const ls = await corral(['token', 'ls']);
    expect(ls.stdout).toMatch(/^ID\s+NAME\s+STATUS\s+EXPIRES\s+SCOPES\n/);
    expect(ls.stdout).toMatch(new RegExp(`${info.token.id}\\s+deploy\\s+active`));

    const revoke = await corral(['token', 'revoke', info.token.id]);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(revoke.stdout).toBe(`revoked token "deploy" (${info.token.id})\n`);
    const lsJson = JSON.parse((await corral(['token', 'ls', '--json'])).stdout) as { id: string; revokedAt: string | null }[];
    expect(lsJson.find((t) => t.id === info.token.id)?.revokedAt).not.toBeNull();
    const after = await corral(['token', 'inspect', token]);
    expect(after.code).toBe(1);
    expect(after.stderr).toBe('token_revoked: token has been revoked\n');
  });

  it('inspects the stored token by default', async () => {
    const r = await corral(['token', 'inspect', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ user: 'admin', token: { name: expect.stringMatching(/^cli@/) } });
  });

  it('refuses a bad --ttl before calling the server', async () => {
    const r = await corral(['token', 'create', 'x', '--ttl', 'soon']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^bad_input: --ttl: "soon" is not a duration; e.g. 500ms/);
  });

  it('lets CORRAL_TOKEN override the stored token', async () => {
    const userToken = await createUser(server, 'tara');
    const r = await corral(['token', 'inspect', '--json'], undefined, { CORRAL_TOKEN: userToken });
    expect(JSON.parse(r.stdout)).toMatchObject({ user: 'tara', role: 'user' });
    const forbidden = await corral(['user', 'ls'], undefined, { CORRAL_TOKEN: userToken });
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toBe('forbidden: this needs the "admin:read" scope\n');
  });

  it('never sends the stored token to another server', async () => {
    const r = await corral(['user', 'ls', '--url', 'http://127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('not_logged_in: no token for http://127.0.0.1:1: run `corral login http://127.0.0.1:1` (or set CORRAL_TOKEN)\n');
    const viaEnv = await corral(['user', 'ls'], undefined, { CORRAL_URL: 'http://127.0.0.1:1' });
    expect(viaEnv.stderr).toMatch(/^not_logged_in: no token for http:\/\/127\.0\.0\.1:1/);
    const sameServer = await corral(['user', 'ls', '--url', `${server.url}/`]);
    expect(sameServer.code, sameServer.stderr).toBe(0);
  });

  it('says when the stored file is not JSON', async () => {
    const other = path.join(home, 'broken');
    const file = path.join(other, 'corral/config.json');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '{not json');
    const r = await corral(['user', 'ls'], undefined, { XDG_CONFIG_HOME: other });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^config_invalid: cannot read .*config\.json/);
  });

  it('logs out: revokes the stored token and forgets it (keep this test last)', async () => {
    const file = path.join(home, 'xdg/corral/config.json');
    const { token } = JSON.parse(await readFile(file, 'utf8')) as { token: string };
    const r = await corral(['logout']);
    expect(r.code, r.stderr).toBe(0);
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(401);
    expect(((await me.json()) as { error: { code: string } }).error.code).toBe('token_revoked');
    const after = await corral(['user', 'ls']);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/^not_logged_in: /);
  });
});
