/**
 * LDAP sign-in against a real OpenLDAP (slapd) on 127.0.0.1: bind as the user over StartTLS,
 * search-then-bind over LDAPS with a service account, both with the test CA. Right and wrong
 * passwords, unknown names, the shared login throttle, groups feeding memberships and the
 * admin role, allowedGroups refusing (and creating nothing), a local user the directory
 * cannot take over, filter and DN injection, an empty password that never reaches the
 * server, and a directory that is down, silent or has a certificate we do not trust:
 * a clear 503 within the timeouts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { once } from 'node:events';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { loadConfig } from '../../src/core/config.js';
import { startServer } from '../../src/server.js';
import { LdapDirectory } from '../../src/core/accounts/ldap.js';
import { LdapConfigSchema, ldapConfigProblem, type LdapConfig } from '../../src/core/accounts/ldap-config.js';
import { escapeDnValue, escapeFilterValue } from '../../src/core/accounts/ldap-escape.js';
import { Value } from '@sinclair/typebox/value';
import { ADMIN_PASSWORD, ROOT, api, createUser, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { BASE_DN, READER_DN, READER_PASSWORD, freePort, startSlapd, type TestSlapd } from '../helpers/slapd.js';

const PEOPLE = [
  { uid: 'alice', password: 'alice-ldap-pw' },
  { uid: 'boss', password: 'boss-ldap-pw' },
  { uid: 'mallory', password: 'mallory-ldap-pw' },
  { uid: 'carol', password: 'carol-ldap-pw' },
  { uid: 'victim', password: 'victim-ldap-pw' },
  { uid: 'smith, john', password: 'smith-ldap-pw' },
  { uid: 'a+b', password: 'ab-ldap-pw' },
];
const GROUPS = [
  { cn: 'staff', members: ['alice', 'boss', 'carol', 'victim', 'smith, john', 'a+b'] },
  { cn: 'corral-admins', members: ['boss'] },
  { cn: 'visitors', members: ['mallory'] },
];

let slapd: TestSlapd;
/** bind as the user (DN template), StartTLS with the test CA */
let bindServer: TestServer;
/** search-then-bind as the reader, over ldaps:// with the test CA */
let searchServer: TestServer;

const ldapConfig = (over: Partial<LdapConfig>): LdapConfig => Value.Default(LdapConfigSchema, { ...over }) as LdapConfig;

const common = {
  groupBase: `ou=groups,${BASE_DN}`,
  allowedGroups: ['staff'],
  adminGroups: ['corral-admins'],
};
// Generous per-address limit: every request here comes from 127.0.0.1.
const throttle = { loginMaxFailures: 3, loginMaxFailuresPerAddress: 1000 };

beforeAll(async () => {
  slapd = await startSlapd(PEOPLE, GROUPS);
  bindServer = await startTestServer({
    auth: { ...throttle, ldap: { url: slapd.url, startTLS: true, caFile: slapd.caFile, userDn: `uid={username},ou=people,${BASE_DN}`, ...common } },
  });
  searchServer = await startTestServer({
    auth: {
      ...throttle,
      ldap: {
        url: slapd.ldapsUrl,
        caFile: slapd.caFile,
        bindDn: READER_DN,
        bindPassword: READER_PASSWORD,
        userBase: `ou=people,${BASE_DN}`,
        userFilter: '(&(objectClass=inetOrgPerson)(uid={username}))',
        ...common,
      },
    },
  });
}, 60_000);

afterAll(async () => {
  await bindServer?.stop();
  await searchServer?.stop();
  await slapd?.stop();
});

const apiLogin = (server: TestServer, name: string, password: string) => api(server, undefined, 'POST', '/api/v1/login', { name, password });

/** The login form, as a browser sends it: its CSRF cookie and field, same origin. */
async function formLogin(server: TestServer, name: string, password: string): Promise<{ status: number; body: string; location: string | null }> {
  const page = await fetch(`${server.url}/login`);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
  const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const res = await fetch(`${server.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, origin: server.url },
    body: new URLSearchParams({ name, password, _csrf: csrf }).toString(),
  });
  return { status: res.status, body: await res.text(), location: res.headers.get('location') };
}

const userNamed = (server: TestServer, name: string) => api(server, server.adminToken, 'GET', `/api/v1/users/${encodeURIComponent(name)}`);

describe('bind as the user (StartTLS)', () => {
  it('signs a directory user in with the right password, creating the user with its groups', async () => {
    const res = await apiLogin(bindServer, 'alice', 'alice-ldap-pw');
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ name: 'alice', role: 'user' });
    const groups = await api(bindServer, bindServer.adminToken, 'GET', '/api/v1/users/alice/groups');
    expect(groups.body.memberships).toEqual([{ group: 'staff', source: 'ldap' }]);
    // The second sign-in finds the same user (by its link), not a new one.
    const again = await apiLogin(bindServer, 'alice', 'alice-ldap-pw');
    expect(again.body.user.id).toBe(res.body.user.id);
  });

  it('makes members of adminGroups admins', async () => {
    const res = await apiLogin(bindServer, 'boss', 'boss-ldap-pw');
    expect(res.status).toBe(200);
    expect(res.body.user.role).toBe('admin');
  });

  it('answers a wrong password and an unknown name as a local wrong password: 401', async () => {
    await createUser(bindServer, 'localuser', 'localuser-password');
    const local = await apiLogin(bindServer, 'localuser', 'not-it-at-all');
    const wrong = await apiLogin(bindServer, 'alice', 'not-alices-password');
    const unknown = await apiLogin(bindServer, 'nobody', 'whatever-password');
    expect(local.status).toBe(401);
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body).toEqual(local.body);
    expect(unknown.body).toEqual(local.body);
    expect((await userNamed(bindServer, 'nobody')).status).toBe(404);
  });

  it('refuses a user outside allowedGroups and creates nothing', async () => {
    const res = await apiLogin(bindServer, 'mallory', 'mallory-ldap-pw');
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('sign_in_refused');
    expect(res.body.error.message).toMatch(/staff/);
    expect((await userNamed(bindServer, 'mallory')).status).toBe(404);
  });

  it('does not let a directory entry take over a local user of the same name', async () => {
    await createUser(bindServer, 'victim', 'victim-local-password');
    const viaLdap = await apiLogin(bindServer, 'victim', 'victim-ldap-pw');
    expect(viaLdap.status).toBe(401);
    const viaLocal = await apiLogin(bindServer, 'victim', 'victim-local-password');
    expect(viaLocal.status).toBe(200);
    const groups = await api(bindServer, bindServer.adminToken, 'GET', '/api/v1/users/victim/groups');
    expect(groups.body.memberships).toEqual([]);
  });

  it('throttles directory users with the same counters as local logins', async () => {
    for (let i = 0; i < 3; i++) expect((await apiLogin(bindServer, 'carol', 'wrong-password')).status).toBe(401);
    const locked = await apiLogin(bindServer, 'carol', 'carol-ldap-pw');
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    // The directory compares names without case; so do the counters.
    expect((await formLogin(bindServer, 'Carol', 'carol-ldap-pw')).status).toBe(429);
    expect((await userNamed(bindServer, 'carol')).status).toBe(404);
  });

  it('escapes the name in the DN: a "," or "+" names that entry, not another DN', async () => {
    // The binds succeed (their names are escaped right) but are not valid corral names: a
    // clear refusal. Unescaped, "uid=smith, john,…" is another DN and the bind fails (401).
    for (const [name, password] of [['smith, john', 'smith-ldap-pw'], ['a+b', 'ab-ldap-pw']] as const) {
      const right = await formLogin(bindServer, name, password);
      expect(right.status, name).toBe(403);
      expect(right.body).toMatch(/not a valid corral user name/);
      expect((await formLogin(bindServer, name, 'wrong-password')).status, name).toBe(401);
    }
  });

  it('signs in through the login form', async () => {
    const res = await formLogin(bindServer, 'alice', 'alice-ldap-pw');
    expect(res.status).toBe(302);
    expect(res.location).toBe('/');
  });
});

describe('search, then bind (LDAPS, service account)', () => {
  it('signs a directory user in', async () => {
    const res = await apiLogin(searchServer, 'alice', 'alice-ldap-pw');
    expect(res.status).toBe(200);
    expect(res.body.user.name).toBe('alice');
    const groups = await api(searchServer, searchServer.adminToken, 'GET', '/api/v1/users/alice/groups');
    expect(groups.body.groups).toEqual(['staff']);
  });

  it('refuses filter injection: a name with * ( ) finds no entry', async () => {
    // Unescaped, "al*" would find alice alone and her password would sign in — a name the
    // throttle counts apart from "alice".
    for (const name of ['al*', '*)(uid=*', 'alice)(uid=*', '*']) {
      const res = await formLogin(searchServer, name, 'alice-ldap-pw');
      expect(res.status, name).toBe(401);
    }
  });

  it('reads the name from the entry: "ALICE" is alice, through the form and the API', async () => {
    const res = await formLogin(searchServer, 'ALICE', 'alice-ldap-pw');
    expect(res.status).toBe(302);
    const api = await apiLogin(searchServer, 'ALICE', 'alice-ldap-pw');
    expect([api.status, api.body.user?.name]).toEqual([200, 'alice']);
    // A control character names nobody: refused before the directory is asked.
    const bad = await apiLogin(searchServer, 'alice\u0000', 'alice-ldap-pw');
    expect([bad.status, bad.body.error.code]).toEqual([400, 'validation_failed']);
  });
});

describe('linkExistingUsers: true, createUsers: false', () => {
  it('lets the directory vouch for an existing local user, and creates no one', async () => {
    const server = await startTestServer({
      auth: { ...throttle, ldap: { url: slapd.url, userDn: `uid={username},ou=people,${BASE_DN}`, ...common, linkExistingUsers: true, createUsers: false } },
    });
    try {
      await createUser(server, 'carol', 'carol-local-password');
      const local = await apiLogin(server, 'carol', 'carol-local-password');
      const viaLdap = await apiLogin(server, 'carol', 'carol-ldap-pw');
      expect(viaLdap.status).toBe(200);
      expect(viaLdap.body.user.id).toBe(local.body.user.id);
      const groups = await api(server, server.adminToken, 'GET', '/api/v1/users/carol/groups');
      expect(groups.body.memberships).toEqual([{ group: 'staff', source: 'ldap' }]);
      // No corral user "alice": the directory's right password does not create one.
      const alice = await apiLogin(server, 'alice', 'alice-ldap-pw');
      expect(alice.status).toBe(403);
      expect(alice.body.error.code).toBe('sign_in_refused');
      expect((await userNamed(server, 'alice')).status).toBe(404);
    } finally {
      await server.stop();
    }
  });
});

describe('auth.localPasswords: false with auth.ldap', () => {
  it('keeps the form for the directory and refuses local passwords, even the first admin\'s', async () => {
    const data = await tempDir();
    const ldap = { url: slapd.url, userDn: `uid={username},ou=people,${BASE_DN}`, ...common };
    const off = await startServer(
      loadConfig({ env: {}, flags: { host: '127.0.0.1', port: 0, logLevel: 'silent', adminPassword: ADMIN_PASSWORD, data, auth: { localPasswords: false, ldap } } }),
    );
    try {
      const target = { url: off.url } as TestServer;
      expect(await (await fetch(`${off.url}/login`)).text()).toContain('name="password"');
      const admin = await apiLogin(target, 'admin', ADMIN_PASSWORD);
      expect(admin.status).toBe(401);
      expect((await apiLogin(target, 'alice', 'alice-ldap-pw')).status).toBe(200);
    } finally {
      await off.close();
      await rm(data, { recursive: true, force: true });
    }
  });
});

describe('a directory that cannot answer', () => {
  it('is a 503 when the service account is refused (not the user\'s 401)', async () => {
    const dir = new LdapDirectory(
      ldapConfig({ url: slapd.url, bindDn: READER_DN, bindPassword: 'not-the-reader-password', userBase: `ou=people,${BASE_DN}` }),
    );
    await expect(dir.authenticate('alice', 'alice-ldap-pw')).rejects.toMatchObject({ code: 'ldap_unavailable', message: expect.stringMatching(/service account/) });
  });

  it('is a 503 ldap_unavailable when the server is down, and counts no failure', async () => {
    const port = await freePort();
    const server = await startTestServer({ auth: { loginMaxFailures: 1, ldap: { url: `ldap://127.0.0.1:${port}`, userDn: `uid={username},ou=people,${BASE_DN}` } } });
    try {
      const res = await apiLogin(server, 'alice', 'alice-ldap-pw');
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('ldap_unavailable');
      expect(res.body.error.message).toContain(`127.0.0.1:${port}`);
      // Not a failed attempt: with loginMaxFailures 1 another try is not locked out.
      expect((await apiLogin(server, 'alice', 'alice-ldap-pw')).status).toBe(503);
      const form = await formLogin(server, 'alice', 'alice-ldap-pw');
      expect(form.status).toBe(503);
      expect(form.body).toContain('could not be used');
    } finally {
      await server.stop();
    }
  });

  it('is a 503 within the timeouts when the server accepts and never answers', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s)).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const { port } = silent.address() as net.AddressInfo;
    try {
      for (const over of [{}, { startTLS: true }]) {
        const dir = new LdapDirectory(
          ldapConfig({ url: `ldap://127.0.0.1:${port}`, userDn: `uid={username},${BASE_DN}`, connectTimeoutSeconds: 1, timeoutSeconds: 1, ...over }),
        );
        await expect(dir.authenticate('alice', 'alice-ldap-pw')).rejects.toMatchObject({ code: 'ldap_unavailable', status: 503 });
      }
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  }, 15_000);

  it('refuses a server whose certificate does not chain to the configured CA (ldaps and StartTLS)', async () => {
    const userDn = `uid={username},ou=people,${BASE_DN}`;
    for (const c of [{ url: slapd.ldapsUrl }, { url: slapd.url, startTLS: true }]) {
      const dir = new LdapDirectory(ldapConfig({ ...c, userDn }));
      await expect(dir.authenticate('alice', 'alice-ldap-pw')).rejects.toMatchObject({ code: 'ldap_unavailable' });
      const trusting = new LdapDirectory(ldapConfig({ ...c, userDn, caFile: slapd.caFile }));
      expect((await trusting.authenticate('alice', 'alice-ldap-pw'))?.name).toBe('alice');
    }
  });

  it('never sends an empty password: refused before asking the server', async () => {
    // A server that is down would make any request a 503; an empty password is a plain no.
    const dir = new LdapDirectory(ldapConfig({ url: `ldap://127.0.0.1:${await freePort()}`, userDn: `uid={username},${BASE_DN}` }));
    await expect(dir.authenticate('alice', '')).resolves.toBeUndefined();
    expect((await apiLogin(bindServer, 'alice', '')).status).toBe(401);
  });
});

describe('escaping', () => {
  it('escapes DN values (RFC 4514) and filter values (RFC 4515)', () => {
    expect(escapeDnValue('smith, john')).toBe('smith\\, john');
    expect(escapeDnValue('a+b=c;d<e>f"g\\h')).toBe('a\\+b\\=c\\;d\\<e\\>f\\"g\\\\h');
    expect(escapeDnValue('#lead')).toBe('\\#lead');
    expect(escapeDnValue(' both ')).toBe('\\ both\\ ');
    expect(escapeDnValue('nul\0')).toBe('nul\\00');
    expect(escapeFilterValue('*)(uid=*')).toBe('\\2a\\29\\28uid=\\2a');
    expect(escapeFilterValue('a\\b\0')).toBe('a\\5cb\\00');
  });

  it('stops at startup on a config with no way (or two ways) to find the user', () => {
    expect(() => new LdapDirectory(ldapConfig({ url: 'ldap://127.0.0.1:1' }))).toThrow(/exactly one of userDn/);
    expect(() => new LdapDirectory(ldapConfig({ url: 'ldap://127.0.0.1:1', userDn: 'uid=x', userBase: BASE_DN }))).toThrow(/exactly one/);
    expect(() => new LdapDirectory(ldapConfig({ url: 'ldap://127.0.0.1:1', userDn: 'uid=fixed,dc=x' }))).toThrow(/\{username\}/);
  });
});

describe('docs/sign-in.md', () => {
  it("LDAP section's examples are valid config", async () => {
    const doc = await readFile(`${ROOT}/docs/sign-in.md`, 'utf8');
    const start = doc.indexOf('## LDAP');
    const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
    const examples = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(examples.length).toBe(2);
    const dir = await tempDir();
    try {
      for (const yaml of examples) {
        await writeFile(`${dir}/corral.yaml`, yaml);
        const ldap = loadConfig({ file: `${dir}/corral.yaml`, env: {} }).auth.ldap!;
        expect(ldap.url).toMatch(/^ldaps?:\/\//);
        expect(ldapConfigProblem(ldap)).toBeUndefined();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
