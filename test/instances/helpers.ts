/** Shared helpers of the instance tests: create through the API and wait for a state. */
import { api, type TestServer } from '../helpers/server.js';

export type Server = { url: string };

export async function createInstance(server: Server, token: string, spec: Record<string, unknown>): Promise<any> {
  const res = await api(server, token, 'POST', '/api/v1/instances', spec);
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Polls the instance until `pred` holds (or throws with the last seen document). */
export async function waitFor(
  server: Server,
  token: string,
  id: string,
  pred: (i: any) => boolean,
  timeoutMs = 20_000,
): Promise<any> {
  const until = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < until) {
    const res = await api(server, token, 'GET', `/api/v1/instances/${id}`);
    last = res.body;
    if (res.status === 200 && pred(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting; last: ${JSON.stringify(last)}`);
}

export const waitForState = (server: Server, token: string, id: string, state: string, timeoutMs?: number) =>
  waitFor(server, token, id, (i) => i.state === state, timeoutMs);

/** Whether a process with this exact command line runs on the machine. */
export async function processesMatching(marker: string): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const out: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(marker) && Number(pid) !== process.pid) out.push(Number(pid));
  }
  return out;
}

export type { TestServer };
