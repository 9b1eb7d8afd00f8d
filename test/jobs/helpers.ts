/** Shared bits of the job tests: posting jobs and finding leftover processes. */
import { readdir, readFile } from 'node:fs/promises';
import { api, type TestServer } from '../helpers/server.js';
import WebSocket from 'ws';

export async function runJob(server: TestServer, token: string, body: Record<string, unknown>, wait = true) {
  return api(server, token, 'POST', `/api/v1/jobs${wait ? '' : '?wait=false'}`, body);
}

/** Host pids whose command line contains `marker`. */
export async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(Number(name));
  }
  return found;
}

/** Polls GET /jobs/{id} until the job is done. */
export async function waitDone(server: TestServer, token: string, id: string, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await api(server, token, 'GET', `/api/v1/jobs/${id}`);
    if (res.status !== 200 || res.body.state === 'done' || Date.now() > until) return res;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Opens the attach socket and collects frames until the server closes it. */
export function attach(url: string, token: string, id: string, onOpen?: (ws: WebSocket) => void) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/jobs/${id}/attach`, { headers: { authorization: `Bearer ${token}` } });
  const frames: { at: number; frame: any }[] = [];
  ws.on('message', (data) => frames.push({ at: Date.now(), frame: JSON.parse(data.toString()) }));
  if (onOpen) ws.on('open', () => onOpen(ws));
  return new Promise<typeof frames>((resolve, reject) => {
    ws.on('close', () => resolve(frames));
    ws.on('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
  });
}
