/** Shared bits of the credits tests: balances, grants, a user's ledger, waiting. */
import { api, createUser, type TestServer } from '../helpers/server.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates a user with `credits` and returns their token and id. */
export async function userWithCredits(server: TestServer, name: string, credits: number): Promise<{ token: string; id: string }> {
  const token = await createUser(server, name);
  if (credits) await grant(server, name, credits);
  const me = await api(server, token, 'GET', '/api/v1/me');
  return { token, id: me.body.user.id };
}

export async function grant(server: TestServer, name: string, amount: number): Promise<number> {
  const res = await api(server, server.adminToken, 'POST', `/api/v1/users/${name}/credits`, { amount });
  if (res.status !== 200) throw new Error(`grant failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.balance;
}

export async function usage(server: { url: string }, token: string, query = ''): Promise<any> {
  const res = await api(server, token, 'GET', `/api/v1/usage${query}`);
  if (res.status !== 200) throw new Error(`usage failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** The balance, checked against the sum of the user's ledger rows (they must always agree). */
export async function consistentBalance(server: { url: string }, token: string): Promise<number> {
  const u = await usage(server, token, '?group=kind&limit=0');
  const sum = u.groups.reduce((n: number, g: { credits: number }) => n + g.credits, 0);
  if (sum !== u.balance) throw new Error(`balance ${u.balance} but the ledger sums to ${sum}`);
  return u.balance;
}

export async function until<T>(fn: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T;
  do {
    last = await fn();
    if (pred(last)) return last;
    await sleep(100);
  } while (Date.now() < end);
  throw new Error(`timed out; last: ${JSON.stringify(last)}`);
}
