/**
 * Reused sandboxes (docs/jobs.md, "Reused sandboxes"): one owner's next job of the same runtime
 * runs in the sandbox the previous one used, and finds nothing of it — no process (a setsid
 * child, a double fork), no file in /work, /tmp or /dev/shm, no FIFO, no environment, cwd or
 * umask change, no SysV IPC object or POSIX message queue, no key. Another owner never gets
 * that sandbox; one whose job timed out or ran out of memory is not reused at all.
 *
 * Which sandbox ran a job: its pid namespace (`readlink /proc/self/ns/pid`) and the start time
 * of its init (pid 1 there), the same for every job of one sandbox and different for every
 * other sandbox — the namespace's inode alone is not: the kernel may give a new namespace the
 * inode of one just freed (a retired sandbox's).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { attach, processesWith, runJob } from './helpers.js';

const NS = 'echo "$(readlink /proc/self/ns/pid) $(cut -d" " -f22 /proc/1/stat)"';
/** What a job sees of its sandbox's writable state, the same in a fresh sandbox and a reused one. */
const LOOK = [
  'ls -A /work /tmp /dev/shm /dev/mqueue',
  'stat -c "%a %n" /work /tmp /dev/shm',
  'ipcs -m -q -s | grep -c "^0x" || true',
  'pwd; umask; env | sort; ulimit -n -f',
  'ls /proc | grep -c "^[0-9]"',
].join('; ');

describe('reused job sandboxes', () => {
  let server: TestServer;
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    server = await startTestServer({ jobs: { poolSize: 2, warmSandboxes: 2 } });
    alice = await createUser(server, 'alice');
    bob = await createUser(server, 'bob');
  });
  afterAll(() => server.stop());

  const sandboxOf = async (token: string, extra: Record<string, unknown> = {}) => {
    const res = await runJob(server, token, { runtime: 'sh', entry: NS, ...extra });
    expect(res.body.status).toBe('ok');
    return res.body.stdout.trim() as string;
  };

  it('runs one owner’s next job in the same sandbox, which shows nothing of the job before', async () => {
    const fresh = await runJob(server, alice, { runtime: 'sh', entry: `${NS}; ${LOOK}` });

    expect(fresh.body.status).toBe('ok');
    const [ns, ...freshLook] = fresh.body.stdout.split('\n');

    const marker = `84${process.pid}3`;
    const dirty = await runJob(server, alice, {
      runtime: 'sh',
      files: { 'mine.txt': 'from the job' },
      entry: [
        NS,
        `setsid sleep ${marker} &`,
        `(sh -c "sleep ${marker} &" &)`,
        'echo left > /work/behind.txt; echo left > /tmp/behind.txt; echo left > /dev/shm/behind.txt',
        'mkdir -p /tmp/d/e; mkfifo /tmp/fifo /work/fifo',
        'ipcmk -M 4096 >/dev/null && ipcmk -Q >/dev/null && ipcmk -S 1 >/dev/null && echo IPC-MADE',
        'python3 -c "import os; os.close(os.open(\'/dev/mqueue/q\', os.O_CREAT | os.O_RDWR, 0o600))" && echo MQ-MADE',
        'python3 -c "import ctypes, os; l = ctypes.CDLL(None, use_errno=True); r = l.syscall(248, b\'user\', b\'k\', b\'secret\', 6, -4); print(\'KEY\', r, os.strerror(ctypes.get_errno()))"',
        'chmod 700 /work /tmp; export LEFT=1; cd /tmp; umask 077; ulimit -n 32',
        `sleep 0.3; echo SLEEPERS $(ps -eo args | grep -c "^sleep ${marker}")`,
        'ls /dev/mqueue; echo done',
      ].join('\n'),
    });
    expect(dirty.body.stderr).toBe('');
    expect(dirty.body.status).toBe('ok');
    const lines = dirty.body.stdout.split('\n');
    expect(lines[0]).toBe(ns);
    expect(lines).toEqual(expect.arrayContaining(['IPC-MADE', 'MQ-MADE', 'q', 'KEY -1 Operation not permitted', 'SLEEPERS 2', 'done']));

    const after = await runJob(server, alice, { runtime: 'sh', entry: `${NS}; ${LOOK}` });
    const [nsAfter, ...afterLook] = after.body.stdout.split('\n');
    expect(nsAfter).toBe(ns);
    expect(afterLook).toEqual(freshLook);
    expect(await processesWith(marker)).toEqual([]);
    // And what that looks like: empty dirs with their modes, no IPC, only init and the job.
    expect(freshLook.slice(0, 12)).toEqual(['/dev/mqueue:', '', '/dev/shm:', '', '/tmp:', '', '/work:', '755 /work', '755 /tmp', '755 /dev/shm', '0', '/work']);
  });

  it('never gives one owner’s sandbox to another owner', async () => {
    const mine = new Set<string>();
    const theirs = new Set<string>();
    for (let i = 0; i < 3; i++) {
      mine.add(await sandboxOf(alice));
      theirs.add(await sandboxOf(bob));
    }
    expect(mine.size).toBe(1);
    expect(theirs.size).toBe(1);
    expect([...mine].filter((n) => theirs.has(n))).toEqual([]);
  });

  it('never gives a sandbox of one runtime to another runtime', async () => {
    const sh = await sandboxOf(alice);
    const py = await runJob(server, alice, { runtime: 'python', entry: NS });
    expect(py.body.stdout.trim()).not.toBe(sh);
    expect(await sandboxOf(alice)).toBe(sh);
  });

  it('a job whose leftovers init cannot remove: the owner’s next job runs in a fresh sandbox (ok), which shows none of them', async () => {
    // Limits of its own: the only sandbox of this profile is the one the jobs run in.
    const limits = { pids: 44 };
    const ns = await sandboxOf(alice, { limits });
    const stuck = await runJob(server, alice, {
      runtime: 'sh',
      limits,
      entry: [
        NS,
        'python3 -c "import os; os.close(os.open(\'/dev/mqueue/stuck\', os.O_CREAT | os.O_RDWR, 0o600))"',
        // No capability in the sandbox: a queue in a read-only /dev/mqueue cannot be removed.
        'chmod 555 /dev/mqueue && ls /dev/mqueue',
      ].join('\n'),
    });
    expect(stuck.body.status).toBe('ok');
    expect(stuck.body.stdout.split('\n')).toEqual([ns, 'stuck', '']);
    // init finds the queue when it resets that sandbox before this job's step, runs nothing
    // there, and the job runs in a fresh sandbox instead.
    const next = await runJob(server, alice, { runtime: 'sh', limits, entry: `${NS}; ls -A /dev/mqueue; stat -c %a /dev/mqueue` });
    expect(next.body.status).toBe('ok');
    const [nsNext, ...rest] = next.body.stdout.split('\n');
    expect(nsNext).not.toBe(ns);
    expect(rest).toEqual(['1777', '']);
    // And that fresh sandbox is the owner's from now on.
    expect(await sandboxOf(alice, { limits })).toBe(nsNext);
  });

  it('an interactive job (the reset is done before its input flows) sees nothing of the job before, also when that reset fails', async () => {
    const limits = { pids: 45 };
    const ns = await sandboxOf(alice, { limits });
    const mq = (name: string) => `python3 -c "import os; os.close(os.open('/dev/mqueue/${name}', os.O_CREAT | os.O_RDWR, 0o600))"`;
    const look = 'read line; echo "got $line"; ipcs -m -q -s | grep -c "^0x" || true; ls -A /dev/mqueue';
    // Its input comes through the attach socket, written as soon as the job runs.
    const interactive = async () => {
      const posted = await runJob(server, alice, { runtime: 'sh', limits, interactive: true, entry: `${NS}; ${look}` }, false);
      const frames = await attach(server.url, alice, posted.body.id, (ws) => ws.send('hello\n'));
      return { body: frames[frames.length - 1]!.frame.job };
    };

    const left = await runJob(server, alice, { runtime: 'sh', limits, entry: `ipcmk -M 4096 >/dev/null && ${mq('q')} && echo LEFT` });
    expect(left.body.stdout).toBe('LEFT\n');
    const same = await interactive();
    expect(same.body.status).toBe('ok');
    expect(same.body.stdout.split('\n')).toEqual([ns, 'got hello', '0', '']);

    const stuck = await runJob(server, alice, { runtime: 'sh', limits, entry: `${mq('stuck')} && chmod 555 /dev/mqueue && echo STUCK` });
    expect(stuck.body.stdout).toBe('STUCK\n');
    const fresh = await interactive();
    expect(fresh.body.status).toBe('ok');
    const [nsFresh, ...rest] = fresh.body.stdout.split('\n');
    expect(nsFresh).not.toBe(ns);
    expect(rest).toEqual(['got hello', '0', '']);
  });

  // Each with limits of its own, so the only sandbox of that profile is the one the job ended in.
  it.each([
    ['timeout', { entry: `${NS}; sleep 5`, timeoutSeconds: 0.5, limits: { pids: 41 } }],
    ['memory', { entry: `${NS}; head -c 100000000 /dev/zero > /tmp/fill`, limits: { memoryBytes: 32 << 20, pids: 42 } }],
    ['output-limit', { entry: `${NS}; yes`, limits: { outputBytes: 1024, pids: 43 } }],
  ])('retires a sandbox after a job that ended in %s', async (status, job) => {
    // A normal job of that profile is followed by its own sandbox (this test can fail).
    const normal = await sandboxOf(alice, { limits: job.limits });
    expect(await sandboxOf(alice, { limits: job.limits })).toBe(normal);
    const before = await runJob(server, alice, { runtime: 'sh', ...job });
    expect(before.body.status).toBe(status);
    const ns = before.body.stdout.split('\n')[0];
    // The same profile again: a fresh sandbox, not the one the job ended in.
    const next = await runJob(server, alice, { runtime: 'sh', ...job, entry: NS, timeoutSeconds: 5 });
    expect(next.body.status).toBe('ok');
    expect(next.body.stdout.trim()).not.toBe(ns);
  });
});
