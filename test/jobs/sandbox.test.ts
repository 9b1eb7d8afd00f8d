import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { jobWorkRoot } from '../../src/core/jobs/work-root.js';
import { processesWith, runJob, waitDone } from './helpers.js';

describe('job sandbox', () => {
  let server: TestServer;
  let alice: string;
  /** Where the server keeps job dirs (a tmpfs by default). */
  let jobs: string;
  beforeAll(async () => {
    server = await startTestServer({ jobs: { poolSize: 2 } });
    alice = await createUser(server, 'alice');
    jobs = jobWorkRoot(server.data, 'memory').root;
  });
  afterAll(() => server.stop());

  it('stops an infinite loop at the timeout and leaves no process behind', async () => {
    const marker = `98${process.pid}17`;
    const started = Date.now();
    const res = await runJob(server, alice, {
      runtime: 'sh',
      entry: `sleep ${marker} & (sleep ${marker}; true) & while :; do :; done`,
      timeoutSeconds: 1,
    });
    const took = Date.now() - started;
    expect(res.body.status).toBe('timeout');
    expect(res.body.wallMs).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(6000);
    expect(await processesWith(marker)).toEqual([]);
  });

  it('contains a fork bomb and keeps serving', async () => {
    const res = await runJob(server, alice, { runtime: 'sh', entry: 'b() { b | b & }; b; exec sleep 5', timeoutSeconds: 2, limits: { pids: 32 } });
    // Normally the bomb runs into the 2 s timeout; on a loaded machine the job's own shell can
    // be the one whose fork is refused, ending the job early with an error. Either way the
    // refused forks below are what shows the limit held.
    expect(['timeout', 'error']).toContain(res.body.status);
    // The pids limit refused the forks beyond 32 processes.
    expect(res.body.stderr).toMatch(/fork/i);
    const after = await runJob(server, alice, { runtime: 'sh', entry: 'echo alive' });
    expect(after.body.stdout).toBe('alive\n');
  });

  it('reports a memory bomb as memory', async () => {
    const res = await runJob(server, alice, {
      runtime: 'python',
      files: { 'main.py': 'x = []\nwhile True:\n    x.append(bytearray(8 << 20))' },
      limits: { memoryBytes: 64 << 20 },
      timeoutSeconds: 20,
    });
    expect(res.body.status).toBe('memory');
    expect(res.body.memoryPeakBytes).toBeGreaterThan(32 << 20);
  });

  it('truncates an output flood at the cap and keeps the server memory flat', async () => {
    const rss = () => process.memoryUsage().rss;
    await runJob(server, alice, { runtime: 'sh', entry: 'yes flood', limits: { outputBytes: 4096 } });
    const before = rss();
    for (let i = 0; i < 5; i++) {
      const res = await runJob(server, alice, { runtime: 'sh', entry: 'yes flood; yes flood >&2', limits: { outputBytes: 1 << 20 }, timeoutSeconds: 10 });
      expect(res.body.status).toBe('output-limit');
      expect(res.body.stdoutTruncated).toBe(true);
      expect(res.body.stdout.length).toBe(1 << 20);
    }
    // Five floods cut at 1 MiB each: the server holds at most a few MiB more, not gigabytes.
    expect(rss() - before).toBeLessThan(96 << 20);
  });

  it('has no network: connecting to the server itself fails', async () => {
    const port = new URL(server.url).port;
    const res = await runJob(server, alice, {
      runtime: 'python',
      files: { 'main.py': `import socket\ntry:\n    socket.create_connection(("127.0.0.1", ${port}), timeout=2)\n    print("connected")\nexcept OSError as e:\n    print("refused", e.errno)` },
    });
    expect(res.body.stdout).toMatch(/^refused/);
  });

  it("cannot see corral's data dir, other jobs' files, or write outside its dir", async () => {
    const secret = await runJob(server, alice, { runtime: 'sh', entry: 'echo s3cret > mine.txt; echo s3cret > /tmp/mine.txt; sleep 3' }, false);
    await new Promise((r) => setTimeout(r, 300));
    // The first job's file really is on the host, where the probe below looks for it.
    const { readFile, readdir } = await import('node:fs/promises');
    const dirs = await readdir(jobs);
    const found = await Promise.all(dirs.map((d) => readFile(`${jobs}/${d}/work/mine.txt`, 'utf8').catch(() => '')));
    expect(found).toContain('s3cret\n');
    const probe = await runJob(server, alice, {
      runtime: 'sh',
      entry: [
        `ls ${server.data} && echo DATA-VISIBLE`,
        `cat ${server.data}/corral.db >/dev/null && echo DB-READABLE`,
        `cat ${jobs}/*/work/mine.txt && echo OTHER-JOB-VISIBLE`,
        'cat /dev/shm/*/*/work/mine.txt && echo OTHER-JOB-VISIBLE-VIA-SHM',
        'cat /proc/*/root/work/mine.txt && echo OTHER-JOB-VISIBLE-VIA-PROC',
        'cat /tmp/mine.txt && echo TMP-SHARED',
        'touch /usr/x && echo USR-WRITABLE',
        'touch /etc/x && echo ETC-WRITABLE',
        'touch /x && echo ROOT-WRITABLE',
        'cat /etc/shadow && echo SHADOW-READABLE',
        'touch ok.txt && echo OWN-DIR-WRITABLE',
      ].join('; '),
    });
    expect(res(probe)).toBe('OWN-DIR-WRITABLE');
    await waitDone(server, alice, secret.body.id);
    function res(r: { body: { stdout: string } }) {
      return r.body.stdout.split('\n').filter((l) => /^[A-Z-]+$/.test(l)).join(',');
    }
  });

  it('gives each job a fresh work dir and removes it afterwards', async () => {
    const first = await runJob(server, alice, { runtime: 'sh', entry: 'pwd; ls; echo left > behind.txt' });
    expect(first.body.stdout).toBe('/work\n');
    const second = await runJob(server, alice, { runtime: 'sh', entry: 'ls -A' });
    expect(second.body.stdout).toBe('');
    await new Promise((r) => setTimeout(r, 500));
    const { readdir } = await import('node:fs/promises');
    // Only the pre-started sandboxes (twice the pool of 2) and the used ones kept for their
    // owner (at most 4 × 4) remain, every work dir emptied; .init holds the init shell.
    const dirs = (await readdir(jobs)).filter((d) => d !== '.init');
    expect(dirs.length).toBeLessThanOrEqual(4 + 16);
    for (const d of dirs) expect(await readdir(`${jobs}/${d}/work`)).toEqual([]);
  });

  it('works in a tmpfs dir (what it writes counts against its memory) whose root only the server can enter', async () => {
    expect(jobs.startsWith('/dev/shm/')).toBe(true);
    const { stat } = await import('node:fs/promises');
    expect((await stat(jobs)).mode & 0o777).toBe(0o700);
    const res = await runJob(server, alice, { runtime: 'sh', entry: 'stat -f -c %T /work' });
    expect(res.body.stdout).toBe('tmpfs\n');
    // Files filling the dir are memory: past the job's limit it is stopped as a memory bomb.
    const filler = await runJob(server, alice, {
      runtime: 'sh',
      entry: 'for i in 1 2 3 4 5 6; do head -c 30000000 /dev/zero > f$i || exit 3; done; echo all-written',
      limits: { memoryBytes: 64 << 20 },
      timeoutSeconds: 20,
    });
    expect(filler.body.status).toBe('memory');
    expect(filler.body.stdout).not.toContain('all-written');
  });

  it('is reachable by id after an admin lists everyone', async () => {
    const res = await api(server, server.adminToken, 'GET', '/api/v1/jobs?all=true&limit=5');
    expect(res.status).toBe(200);
    expect(res.body.jobs.length).toBe(5);
    expect(res.body.jobs.every((j: { user: string }) => j.user === 'alice')).toBe(true);
  });
});
