/**
 * golem-herder's `POST /token/v1/generate`: its password is guessed at no faster than a
 * login (the same throttle, counted before the check), and a token carries at most
 * `compat.golemHerder.maxTokenCredits`. Each "client" has its own loopback address.
 */
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type TestServer } from '../helpers/server.js';
import { startGolemServer } from './golem-helpers.js';

const PASSWORD = 'token-password-for-tests';
const MAX_CREDITS = 1000;
let server: TestServer;
let root: string;
const agents: Agent[] = [];

beforeAll(async () => {
  server = await startGolemServer({ tokenPassword: PASSWORD, maxTokenCredits: MAX_CREDITS }, { auth: { loginMaxFailures: 3, loginLockSeconds: 30 } });
  root = server.compat.golemHerder!;
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await server?.stop();
});

function clientAt(address: string) {
  const agent = new Agent({ localAddress: address });
  agents.push(agent);
  return async (fields: Record<string, string>) => {
    const res = await request(`${root}/token/v1/generate`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
    const body = (await res.body.json()) as { token?: string; credits?: number; error?: { code: string; message: string; field?: string } };
    return { status: res.statusCode, retryAfter: res.headers['retry-after'], body };
  };
}

describe('golem-herder token password', () => {
  it('is throttled like a login: 429 with Retry-After after the limit, the right password included', async () => {
    const generate = clientAt('127.0.0.40');
    for (let i = 0; i < 3; i++) expect((await generate({ password: `guess-${i}-xyz`, email: 'a@example.com' })).status).toBe(401);
    const locked = await generate({ password: PASSWORD, email: 'a@example.com' });
    expect(locked.status).toBe(429);
    expect(locked.body.error?.code).toBe('too_many_attempts');
    expect(Number(locked.retryAfter)).toBeGreaterThan(0);
    // Another client is not locked out by this one's guesses.
    expect((await clientAt('127.0.0.41')({ password: PASSWORD, email: 'a@example.com' })).status).toBe(200);
  });

  it('a burst of concurrent guesses gets at most the limit checked', async () => {
    const generate = clientAt('127.0.0.42');
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => generate({ password: i === 30 ? PASSWORD : `guess-${i}-xyz`, email: 'b@example.com' })),
    );
    expect(results.filter((r) => r.status === 401).length).toBeLessThanOrEqual(3);
    expect(results.filter((r) => r.status === 200).length).toBe(0);
    expect(results[30]!.status).toBe(429);
  });
});

describe('golem-herder token credits', () => {
  it('refuses a token carrying more than maxTokenCredits with 400 naming the field and the cap', async () => {
    const generate = clientAt('127.0.0.43');
    const tooMany = await generate({ password: PASSWORD, email: 'rich@example.com', credits: '1000000000' });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatchObject({ code: 'validation_failed', field: 'credits' });
    expect(tooMany.body.error!.message).toContain(String(MAX_CREDITS));
    expect((await generate({ password: PASSWORD, email: 'rich@example.com', credits: String(MAX_CREDITS + 1) })).status).toBe(400);
    const atCap = await generate({ password: PASSWORD, email: 'rich@example.com', credits: String(MAX_CREDITS) });
    expect(atCap.status).toBe(200);
    expect(atCap.body.credits).toBe(MAX_CREDITS);
  });

  it('caps the admin route that makes the same tokens', async () => {
    const res = await api(server, server.adminToken, 'POST', '/api/v1/golem-herder/tokens', { email: 'admin-made@example.com', credits: MAX_CREDITS + 1 });
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe('credits');
  });
});
