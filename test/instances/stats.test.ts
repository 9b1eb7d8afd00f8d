/**
 * Live resource stats: a real instance that burns a core and holds ~96 MiB is sampled from
 * its cgroup every half second; GET /instances/{id}/stats shows plausible values, only to its
 * owner and admins; GET /stats gives admins the whole server; the events stream carries each
 * sample to those who may see it, and no one else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { createInstance, openStream, waitForState } from './helpers.js';

const MiB = 1024 * 1024;
// Holds 96 MiB (every page touched, so it is resident) and spins.
const BURN = `const b = Buffer.alloc(96 * 1024 * 1024, 1); console.log('holding', b.length); for (;;) { Math.sqrt(Math.random()); }`;

let server: TestServer;
let alice: string;
let bob: string;
let id: string;

beforeAll(async () => {
  server = await startTestServer({ instances: { stats: { intervalSeconds: 0.5, keepSeconds: 60 } } });
  alice = await createUser(server, 'alice');
  bob = await createUser(server, 'bob');
  const inst = await createInstance(server, alice, { name: 'burn', command: [process.execPath, '-e', BURN], limits: { memoryBytes: 256 * MiB, cpus: 1 } });
  id = inst.id;
  await waitForState(server, alice, id, 'running');
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

type Sample = { t: number; cpuPercent: number | null; memoryBytes: number | null };

async function samplesUntil(pred: (s: Sample[]) => boolean, timeoutMs = 20_000): Promise<Sample[]> {
  const until = Date.now() + timeoutMs;
  let last: Sample[] = [];
  while (Date.now() < until) {
    const res = await api(server, alice, 'GET', `/api/v1/instances/${id}/stats`);
    expect(res.status).toBe(200);
    last = res.body.samples;
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no such samples in time; last: ${JSON.stringify(last.slice(-5))}`);
}

describe('instance stats', () => {
  it('samples a busy instance from its cgroup: CPU near one core, memory near what it holds', async () => {
    const busy = (s: Sample) => (s.cpuPercent ?? 0) > 40 && (s.memoryBytes ?? 0) > 90 * MiB;
    const samples = await samplesUntil((all) => all.filter(busy).length >= 3);
    for (const s of samples.filter((x) => x.cpuPercent !== null)) {
      // cpus: 1 caps it at one core; a little over 100 is sampling jitter.
      expect(s.cpuPercent).toBeGreaterThanOrEqual(0);
      expect(s.cpuPercent).toBeLessThan(130);
    }
    for (const s of samples.filter(busy)) expect(s.memoryBytes).toBeLessThanOrEqual(256 * MiB);
    const ts = samples.map((s) => s.t);
    expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    expect(ts[0]).toBeGreaterThan(Date.now() - 60_000);

    const res = await api(server, alice, 'GET', `/api/v1/instances/burn/stats`);
    expect(res.body).toMatchObject({ id, name: 'burn', state: 'running', intervalSeconds: 0.5, keepSeconds: 60, memoryLimitBytes: 256 * MiB, cpuLimit: 1 });

    // `since` returns only what is newer.
    const last = ts[ts.length - 1]!;
    const newer = await api(server, alice, 'GET', `/api/v1/instances/${id}/stats?since=${last}`);
    expect(newer.body.samples.every((s: Sample) => s.t > last)).toBe(true);
  }, 40_000);

  it('shows them to the owner and admins only', async () => {
    expect((await api(server, bob, 'GET', `/api/v1/instances/${id}/stats`)).status).toBe(404);
    expect((await api(server, bob, 'GET', `/api/v1/instances/alice:burn/stats`)).status).toBe(404);
    expect((await api(server, undefined, 'GET', `/api/v1/instances/${id}/stats`)).status).toBe(401);
    const admin = await api(server, server.adminToken, 'GET', `/api/v1/instances/alice:burn/stats`);
    expect(admin.status).toBe(200);
    expect(admin.body.samples.length).toBeGreaterThan(0);
  });

  it('refuses bad input', async () => {
    for (const q of ['since=yesterday', 'since=-1', 'other=1']) {
      const res = await api(server, alice, 'GET', `/api/v1/instances/${id}/stats?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect((await api(server, alice, 'GET', `/api/v1/instances/nope/stats`)).status).toBe(404);
  });

  it('gives admins the whole server: the instances summed, corral itself, the host', async () => {
    expect((await api(server, alice, 'GET', '/api/v1/stats')).status).toBe(403);
    const res = await api(server, server.adminToken, 'GET', '/api/v1/stats');
    expect(res.status).toBe(200);
    const busy = res.body.samples.filter((s: any) => s.instances.running >= 1 && s.instances.memoryBytes > 90 * MiB);
    expect(busy.length).toBeGreaterThan(0);
    const s = res.body.samples[res.body.samples.length - 1];
    expect(s.server.memoryBytes).toBeGreaterThan(10 * MiB);
    expect(s.host.memoryTotalBytes).toBeGreaterThan(s.host.memoryFreeBytes);
    expect(s.host.cpus).toBeGreaterThan(0);
  });

  it('sends each sample over the events stream to the owner and admins, not to others', async () => {
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    type Stream = Awaited<ReturnType<typeof openStream>>;
    const [mine, theirs, admin] = (await Promise.all([alice, bob, server.adminToken].map((t) => openStream(`${server.url}/api/v1/events`, auth(t))))) as [Stream, Stream, Stream];
    // Bob's stream is read all along (until it closes), so whatever reaches him is seen.
    const reading = theirs.until('never sent').catch(() => undefined);
    try {
      await expect.poll(() => theirs.text()).toContain('corral instance events');
      await mine.until('event: stats');
      await admin.until('"server":');
      const stats = mine.text().split('\n\n').find((b) => b.startsWith('event: stats'))!;
      const data = JSON.parse(stats.split('\ndata: ')[1]!);
      expect(data.instances.map((i: { id: string }) => i.id)).toEqual([id]);
      expect(data.server).toBeUndefined();
      expect(admin.text()).toContain(id);
      // Bob has nothing running: no stats of alice's reach him.
      await new Promise((r) => setTimeout(r, 1500));
      expect(theirs.text()).not.toContain('event: stats');
      expect(theirs.text()).not.toContain(id);
    } finally {
      await Promise.all([mine, theirs, admin].map((s) => s.close()));
      await reading;
    }
  }, 20_000);

  it('keeps the history of a stopped instance and adds no samples while it is stopped', async () => {
    await api(server, alice, 'POST', `/api/v1/instances/${id}/stop`);
    await waitForState(server, alice, id, 'stopped');
    const before = (await api(server, alice, 'GET', `/api/v1/instances/${id}/stats`)).body.samples as Sample[];
    expect(before.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1500));
    const after = (await api(server, alice, 'GET', `/api/v1/instances/${id}/stats`)).body.samples as Sample[];
    expect(after.length).toBe(before.length);
  }, 30_000);
});
