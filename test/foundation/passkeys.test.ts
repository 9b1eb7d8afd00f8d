/**
 * Passkeys at the API, against the real server and a software authenticator: registration
 * and sign-in, and the attacks a browser would never make — a replayed answer, a challenge
 * nobody issued, another session's challenge, a cloned key whose counter went back, an
 * unknown credential (throttled like a password) — plus bad input and `auth.passkeys.require`.
 * The browser flow with Chromium's virtual authenticator is test/web/passkeys.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, login, startTestServer, type TestServer } from '../helpers/server.js';
import { madeUpChallenge, SoftAuthenticator } from '../helpers/soft-authenticator.js';

/** A browser's cookies, by name. */
class Jar {
  readonly cookies = new Map<string, string>();
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const [k, v] = [pair!.slice(0, i), pair!.slice(i + 1)];
      if (v && !/max-age=0|expires=thu, 01 jan 1970/i.test(c)) this.cookies.set(k, v);
      else this.cookies.delete(k);
    }
  }
}

async function call(server: TestServer, jar: Jar, method: string, path: string, body?: unknown, csrf?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: {
      cookie: jar.header(),
      ...(csrf && { 'x-csrf-token': csrf }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  jar.take(res);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A browser signed in with a password. */
async function passwordBrowser(server: TestServer, name: string): Promise<{ jar: Jar; csrf: string }> {
  const s = await login(server.url, name, `${name}-password`);
  const jar = new Jar();
  const [k, v] = s.cookie.split('=');
  jar.cookies.set(k!, v!);
  return { jar, csrf: s.csrfToken };
}

async function register(server: TestServer, b: { jar: Jar; csrf: string }, auth: SoftAuthenticator, name?: string) {
  const options = await call(server, b.jar, 'POST', '/passkeys/registration/options', undefined, b.csrf);
  expect(options.status).toBe(200);
  return call(server, b.jar, 'POST', '/passkeys/registration', { response: auth.create(options.body), ...(name && { name }) }, b.csrf);
}

/** Sign-in options in a fresh browser: its jar (holding the ticket) and the challenge. */
async function beginSignIn(server: TestServer): Promise<{ jar: Jar; challenge: string; ticket: string }> {
  const jar = new Jar();
  const res = await call(server, jar, 'POST', '/passkeys/login/options');
  expect(res.status).toBe(200);
  const ticket = jar.cookies.get('corral_passkey');
  expect(ticket).toBeTruthy();
  return { jar, challenge: res.body.challenge, ticket: ticket! };
}

describe('passkeys at the API', () => {
  let server: TestServer;
  let origin: string;

  beforeAll(async () => {
    server = await startTestServer({ auth: { loginMaxFailures: 8 } });
    origin = `http://localhost:${new URL(server.url).port}`;
    for (const u of ['dora', 'eve', 'finn', 'gus']) await createUser(server, u);
  }, 60_000);
  afterAll(() => server?.stop());

  it('registers a passkey and signs in with it: a session like a password one', async () => {
    const auth = new SoftAuthenticator(origin);
    const dora = await passwordBrowser(server, 'dora');
    const added = await register(server, dora, auth, 'yubikey');
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ name: 'yubikey', transports: ['internal'], lastUsedAt: null });

    const { jar, challenge } = await beginSignIn(server);
    const res = await call(server, jar, 'POST', '/passkeys/login', { response: auth.get(challenge) });
    expect(res.status).toBe(200);
    expect(res.body.user.name).toBe('dora');
    expect((await call(server, jar, 'GET', '/me')).body.user.name).toBe('dora');
    const listed = await call(server, jar, 'GET', '/passkeys');
    expect(listed.body.passkeys).toEqual([expect.objectContaining({ id: added.body.id, name: 'yubikey', lastUsedAt: expect.any(String) })]);

    // Rename and delete: one's own passkeys only.
    expect((await call(server, jar, 'PATCH', `/passkeys/${added.body.id}`, { name: 'key 1' }, res.body.csrfToken)).body.name).toBe('key 1');
    const eve = await passwordBrowser(server, 'eve');
    expect((await call(server, eve.jar, 'DELETE', `/passkeys/${added.body.id}`, undefined, eve.csrf)).body.error.code).toBe('passkey_not_found');
    expect((await call(server, jar, 'DELETE', `/passkeys/${added.body.id}`, undefined, res.body.csrfToken)).status).toBe(204);
    // Deleted server-side: the authenticator still holds it, the server refuses it.
    const again = await beginSignIn(server);
    const refused = await call(server, again.jar, 'POST', '/passkeys/login', { response: auth.get(again.challenge) });
    expect(refused).toMatchObject({ status: 401, body: { error: { code: 'passkey_refused' } } });
  });

  it('refuses a replayed answer, an answer to a challenge nobody issued, and a cloned key whose counter went back', async () => {
    const auth = new SoftAuthenticator(origin);
    expect((await register(server, await passwordBrowser(server, 'finn'), auth)).status).toBe(201);

    const first = await beginSignIn(server);
    const answer = auth.get(first.challenge);
    expect((await call(server, first.jar, 'POST', '/passkeys/login', { response: answer })).status).toBe(200);
    // The same answer again, with the same ticket: its challenge was used.
    const jar = new Jar();
    jar.cookies.set('corral_passkey', first.ticket);
    expect((await call(server, jar, 'POST', '/passkeys/login', { response: answer })).body.error.code).toBe('passkey_refused');
    // ... or under a fresh ticket: its challenge is another one.
    const second = await beginSignIn(server);
    expect((await call(server, second.jar, 'POST', '/passkeys/login', { response: answer })).body.error.code).toBe('passkey_refused');
    // A challenge of the attacker's choosing, validly signed, under a real ticket.
    const third = await beginSignIn(server);
    expect((await call(server, third.jar, 'POST', '/passkeys/login', { response: auth.get(madeUpChallenge()) })).body.error.code).toBe('passkey_refused');
    // A ticket serves one attempt: after a failed one (a bad signature), a good answer is refused too.
    const once = await beginSignIn(server);
    const bad = auth.get(once.challenge);
    const good = auth.get(once.challenge);
    bad.response.signature = good.response.signature!.replace(/^./, (c) => (c === 'M' ? 'N' : 'M'));
    expect((await call(server, once.jar, 'POST', '/passkeys/login', { response: bad })).status).toBe(401);
    const sameTicket = new Jar();
    sameTicket.cookies.set('corral_passkey', once.ticket);
    expect((await call(server, sameTicket, 'POST', '/passkeys/login', { response: good })).body.error.code).toBe('passkey_refused');
    // No ticket at all.
    expect((await call(server, new Jar(), 'POST', '/passkeys/login', { response: auth.get(madeUpChallenge()) })).status).toBe(401);
    // Signed for another origin (a phishing site relaying the challenge).
    const fourth = await beginSignIn(server);
    expect((await call(server, fourth.jar, 'POST', '/passkeys/login', { response: auth.get(fourth.challenge, { origin: 'http://localhost.evil.test' }) })).status).toBe(401);

    // Counter: 10 accepted, then a copy of the key still at 5 is refused.
    const ok = await beginSignIn(server);
    expect((await call(server, ok.jar, 'POST', '/passkeys/login', { response: auth.get(ok.challenge, { counter: 10 }) })).status).toBe(200);
    const clone = await beginSignIn(server);
    expect((await call(server, clone.jar, 'POST', '/passkeys/login', { response: auth.get(clone.challenge, { counter: 5 }) })).status).toBe(401);
  });

  it('binds a registration to the session that asked for its options, once', async () => {
    const auth = new SoftAuthenticator(origin);
    const gus = await passwordBrowser(server, 'gus');
    const other = await passwordBrowser(server, 'gus');
    const options = await call(server, gus.jar, 'POST', '/passkeys/registration/options', undefined, gus.csrf);
    const response = auth.create(options.body);
    // Another session of the same user cannot finish it.
    expect((await call(server, other.jar, 'POST', '/passkeys/registration', { response }, other.csrf)).body.error.code).toBe('passkey_invalid');
    expect((await call(server, gus.jar, 'POST', '/passkeys/registration', { response }, gus.csrf)).status).toBe(201);
    // Used once.
    expect((await call(server, gus.jar, 'POST', '/passkeys/registration', { response }, gus.csrf)).body.error.code).toBe('passkey_invalid');
    // A made-up challenge after fresh options.
    await call(server, gus.jar, 'POST', '/passkeys/registration/options', undefined, gus.csrf);
    const forged = await call(server, gus.jar, 'POST', '/passkeys/registration', { response: auth.create({ challenge: madeUpChallenge(), user: { id: 'x' } }) }, gus.csrf);
    expect(forged).toMatchObject({ status: 400, body: { error: { code: 'passkey_invalid' } } });
    // A token cannot register (no browser session to bind to).
    const token = await api(server, server.adminToken, 'POST', '/api/v1/passkeys/registration/options');
    expect(token.status).toBe(403);
  });

  it('counts failed assertions in the login throttle', async () => {
    const auth = new SoftAuthenticator(origin);
    auth.create({ challenge: madeUpChallenge(), user: { id: 'nobody' } }); // never registered
    const codes: string[] = [];
    for (let i = 0; i < 9; i++) {
      const { jar, challenge } = await beginSignIn(server);
      codes.push((await call(server, jar, 'POST', '/passkeys/login', { response: auth.get(challenge) })).body.error.code);
    }
    expect(codes).toEqual([...Array<string>(8).fill('passkey_refused'), 'too_many_attempts']);
  });

  it('answers bad input with 400 naming the field', async () => {
    const auth = new SoftAuthenticator(origin);
    auth.create({ challenge: madeUpChallenge(), user: { id: 'x' } });
    const { jar, challenge } = await beginSignIn(server);
    const good = auth.get(challenge);
    const cases: [unknown, string][] = [
      [{}, 'missing field "response"'],
      [{ response: { ...good, response: { ...good.response, signature: undefined } } }, 'body.response.response: missing field "signature"'],
      [{ response: { ...good, id: 'not base64url!' } }, 'body.response.id'],
      [{ response: { ...good, type: 'password' } }, 'body.response.type'],
      [{ response: good, extra: 1 }, 'unknown field "extra"'],
    ];
    for (const [body, message] of cases) {
      const res = await call(server, jar, 'POST', '/passkeys/login', body);
      expect(res.status, message).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.message).toContain(message);
    }
    const dora = await passwordBrowser(server, 'dora');
    const longName = await call(server, dora.jar, 'PATCH', '/passkeys/abc', { name: 'x'.repeat(65) }, dora.csrf);
    expect(longName.body.error.message).toContain('body.name');
    const badId = await call(server, dora.jar, 'DELETE', '/passkeys/a%20b', undefined, dora.csrf);
    expect(badId.body.error.message).toContain('params.id');
  });
});

describe('auth.passkeys.require', () => {
  let server: TestServer;
  let origin: string;

  beforeAll(async () => {
    server = await startTestServer({ auth: { passkeys: { requireGroups: ['ops'] } } });
    origin = `http://localhost:${new URL(server.url).port}`;
    await createUser(server, 'olga');
    expect((await api(server, server.adminToken, 'PUT', '/api/v1/users/olga/groups', { groups: ['ops'] })).status).toBe(200);
  }, 60_000);
  afterAll(() => server?.stop());

  it('gives a password a session that can only register a passkey, then refuses the password', async () => {
    const olga = await passwordBrowser(server, 'olga');
    expect((await call(server, olga.jar, 'GET', '/instances')).body.error.code).toBe('passkey_required');
    expect((await call(server, olga.jar, 'POST', '/tokens', { name: 'sneaky' }, olga.csrf)).body.error.code).toBe('passkey_required');
    expect((await call(server, olga.jar, 'GET', '/passkeys')).body).toMatchObject({ required: true, enrolmentOnly: true });
    expect((await call(server, olga.jar, 'GET', '/me')).status).toBe(200);

    const auth = new SoftAuthenticator(origin);
    expect((await register(server, olga, auth)).status).toBe(201);
    // Registering made this session a full one.
    expect((await call(server, olga.jar, 'GET', '/instances')).status).toBe(200);

    // From now on a password alone is refused...
    const res = await fetch(`${server.url}/api/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'olga', password: 'olga-password' }) });
    expect(res.status).toBe(403);
    expect(((await res.json()) as any).error.code).toBe('passkey_required');
    // ... and the passkey gives a full session.
    const { jar, challenge } = await beginSignIn(server);
    expect((await call(server, jar, 'POST', '/passkeys/login', { response: auth.get(challenge) })).status).toBe(200);
    expect((await call(server, jar, 'GET', '/instances')).status).toBe(200);

    // Lost it: an admin removes her passkeys, and her password gives an enrolment session again.
    expect((await api(server, server.adminToken, 'GET', '/api/v1/users/olga/passkeys')).body.passkeys).toHaveLength(1);
    expect((await api(server, server.adminToken, 'DELETE', '/api/v1/users/olga/passkeys')).body).toEqual({ removed: 1 });
    const again = await passwordBrowser(server, 'olga');
    expect((await call(server, again.jar, 'GET', '/passkeys')).body).toMatchObject({ passkeys: [], enrolmentOnly: true });
    expect((await api(server, server.adminToken, 'DELETE', '/api/v1/users/nobody/passkeys')).body.error.code).toBe('user_not_found');
    // A user's own session cannot do it (admins only).
    expect((await call(server, jar, 'DELETE', '/users/olga/passkeys', undefined, (await call(server, jar, 'GET', '/me')).body.csrfToken)).status).toBe(403);
  });
});
