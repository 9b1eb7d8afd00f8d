/** Shared by the keeper tests (test/drivers/keeper*.test.ts, test/cluster/keeper-takeover.test.ts). */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { KeeperClient } from '../../src/drivers/process/keeper-client.js';
import { ADMIN_PASSWORD, createToken, login, tempDir, type ChildServer } from '../helpers/server.js';
import { processesMatching } from '../instances/helpers.js';

export const KEEPER_ENV = { CORRAL_DRIVERS__PROCESS__KEEPER: 'true' };

/** Serves GET on 8000, prints "tick N" every 50 ms (and notes it with its time in /data/ticks), echoes stdin as "got …", reports SIGUSR1 and SIGTERM. */
export const APP = `
import http.server, signal, sys, threading, time
signal.signal(signal.SIGUSR1, lambda *a: print("usr1", flush=True))
def term(*a):
    print("term", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
def ticks():
    n = 0
    # The truth the log is checked against: each tick with when it was written.
    with open("/data/ticks", "a") as f:
        while True:
            n += 1
            print("tick %d" % n, flush=True)
            f.write("%d %d\\n" % (n, int(time.time() * 1000)))
            f.flush()
            time.sleep(0.05)
def echo():
    for line in sys.stdin:
        print("got " + line.strip(), flush=True)
threading.Thread(target=ticks, daemon=True).start()
threading.Thread(target=echo, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"alive"
        self.send_response(200); self.send_header("content-length", "5"); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", 8000), H).serve_forever()
`;

export async function adminToken(url: string): Promise<string> {
  return createToken(url, await login(url, 'admin', ADMIN_PASSWORD), `t-${Date.now()}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET / on the instance's host port through 127.0.0.1: its body, or the error. */
export async function poke(port: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) });
    return await res.text();
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

export async function logText(server: { url: string }, token: string, id: string): Promise<string> {
  const res = await fetch(`${server.url}/api/v1/instances/${id}/logs?tail=100000`, { headers: { authorization: `Bearer ${token}` } });
  return res.text();
}

/** The tick numbers in the log, in log order. */
export const ticksIn = (text: string) => [...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));

/** SIGKILL to the server's whole process group (the server, its spawn host, …): not the keeper, in its own session. */
export async function killGroup(server: ChildServer): Promise<void> {
  process.kill(-server.child.pid!, 'SIGKILL');
  await server.kill('SIGKILL');
}

export function keeperPid(data: string): number {
  return Number(readFileSync(path.join(data, 'keeper', 'pid'), 'utf8').split(' ')[0]);
}

export async function waitGone(marker: string, ms = 10_000): Promise<number[]> {
  const until = Date.now() + ms;
  let left = await processesMatching(marker);
  while (left.length && Date.now() < until) {
    await sleep(100);
    left = await processesMatching(marker);
  }
  return left;
}

export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The ticks the app wrote (data/ticks) while `from` <= time < `to`, in order. */
export function ticksWritten(data: string, id: string, from: number, to: number): number[] {
  return readFileSync(path.join(data, 'instances', id, 'data', 'ticks'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ').map(Number) as [number, number])
    .filter(([, t]) => t >= from && t < to)
    .map(([n]) => n);
}

export async function waitUntil(pred: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > until) throw new Error('timed out');
    await sleep(50);
  }
}

/**
 * A keeper of its own in a fresh dir, reached through a first KeeperClient (as a manager), and
 * added to `cleanup`: SIGTERMed (it stops whatever it keeps) and its dir removed.
 */
export async function standaloneKeeper(cleanup: (() => Promise<void>)[]): Promise<{ dir: string; keeperDir: string; first: KeeperClient; pid: number }> {
  const dir = await tempDir();
  const keeperDir = path.join(dir, 'keeper');
  const first = new KeeperClient(keeperDir);
  const pid = (await first.identity()).pid;
  cleanup.push(async () => {
    if (alive(pid)) process.kill(pid, 'SIGTERM');
    await waitUntil(() => !alive(pid), 15_000).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, keeperDir, first, pid };
}
