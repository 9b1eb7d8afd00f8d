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

/**
 * The processes of a workload once its sandbox is fully up: "running" is answered once the
 * sandbox was spawned, and bwrap forks its inner half (pid 1 of the namespace) a moment later
 * on a loaded machine. Read until two reads 200 ms apart agree.
 */
export async function settledProcessesMatching(marker: string, timeoutMs = 10_000): Promise<number[]> {
  const until = Date.now() + timeoutMs;
  let last = (await processesMatching(marker)).sort();
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const now = (await processesMatching(marker)).sort();
    if ((now.length && now.join() === last.join()) || Date.now() > until) return now;
    last = now;
  }
}

export type { TestServer };

/**
 * A streaming GET (logs -f, events) on its own connection pool, so closing it really closes
 * the socket (an aborted global fetch may leave a fresh idle connection that delays the
 * server's shutdown until its header timeout).
 */
export async function openStream(url: string, headers: Record<string, string>) {
  const { Agent, request } = await import('undici');
  const agent = new Agent();
  const res = await request(url, { headers, dispatcher: agent });
  let buf = '';
  const chunks = res.body[Symbol.asyncIterator]();
  return {
    status: res.statusCode,
    headers: res.headers,
    text: () => buf,
    /** Reads until the text so far contains `s`. */
    async until(s: string): Promise<string> {
      while (!buf.includes(s)) {
        const { value, done } = await chunks.next();
        if (done) throw new Error(`stream ended before "${s}"; got ${buf}`);
        buf += Buffer.from(value as Buffer).toString();
      }
      return buf;
    },
    async close() {
      await agent.destroy();
    },
  };
}
