/**
 * The spawn host: children forked by a helper process, their pipes handed to the server.
 * Both spawners must behave the same, and the host must lose no byte of a child that
 * writes and exits at once (its pipes travel to the server unread).
 */
import { describe, expect, it } from 'vitest';
import { childEnv } from '../../src/core/child-env.js';
import { HostSpawner, LocalSpawner, type Spawned, type Spawner } from '../../src/drivers/process/spawner.js';

const env = childEnv();
/** In this process's environment (so in the spawn host's, if it inherited): must reach no child. */
const CANARY = `canary-${process.pid}-spawner`;
process.env.CORRAL_TEST_CANARY = CANARY;

// An empty pipe of a child that exited at once may have closed before anyone listens (it
// cannot close while unread data is in it): then there is nothing to read.
const read = (s: NodeJS.ReadableStream) =>
  new Promise<string>((resolve) => {
    if ((s as NodeJS.ReadableStream & { closed?: boolean }).closed) return resolve('');
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('close', () => resolve(text));
  });

/**
 * Fails after `ms` naming the step, so a hang says where it hung (the spawn itself, the exit
 * report, or a pipe's close) instead of timing out the whole test.
 */
function step<T>(label: string, p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hung: ${label} (${ms} ms)`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function run(spawner: Spawner, script: string, input?: { fd3?: string; stdin?: string }): Promise<{ child: Spawned; out: string; err: string }> {
  const child = await step(`spawn of ${script}`, spawner.spawn(['/bin/sh', '-c', script], { pipes: 4, env }));
  const out = read(child.stdout);
  const err = read(child.stderr);
  if (input?.fd3 !== undefined) child.stdio[3]!.end(input.fd3);
  if (input?.stdin !== undefined) child.stdin.end(input.stdin);
  await step(`exit report of ${script}`, child.exited);
  await step(`stdout and stderr closing of ${script}`, child.closed);
  return { child, out: await out, err: await err };
}

describe.each([
  ['spawn host', () => new HostSpawner()],
  ['in-process', () => new LocalSpawner()],
])('%s', (_name, make) => {
  const spawner = make();

  it('connects stdin, stdout, stderr and fd 3, and reports the exit code', async () => {
    const { child, out, err } = await run(spawner, 'read -r x <&3; echo "fd3=$x"; cat >&2; exit 7', { fd3: 'go\n', stdin: 'to stdin\n' });
    expect(out).toBe('fd3=go\n');
    expect(err).toBe('to stdin\n');
    expect(child.exitInfo).toEqual({ code: 7, signal: null });
    expect(child.pid).toBeGreaterThan(1);
  });

  it('loses no output of children that write and exit at once', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => run(spawner, `echo early-${i}; echo err-${i} >&2`)));
    results.forEach((r, i) => {
      expect(r.out).toBe(`early-${i}\n`);
      expect(r.err).toBe(`err-${i}\n`);
    });
  });

  it('signals a running child, and ignores kill() after the exit', async () => {
    const child = await spawner.spawn(['/bin/sh', '-c', 'echo up; exec sleep 30'], { pipes: 3, env });
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGTERM');
    expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(() => child.kill('SIGKILL')).not.toThrow();
  });

  it('rejects a program that does not exist', async () => {
    await expect(spawner.spawn(['/nonexistent/program'], { pipes: 3, env })).rejects.toThrow(/ENOENT|nonexistent/);
  });

  it("gives a child exactly the env it is given, nothing of the server's", async () => {
    const { out } = await run(spawner, 'env', {});
    expect(out).not.toContain(CANARY);
    expect(Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))).toMatchObject({ ...env });
    expect(out.trim().split('\n').map((l) => l.split('=')[0]).filter((k) => k !== 'PWD' && k !== 'SHLVL' && k !== '_').sort()).toEqual(Object.keys(env).sort());
  });

  it('starts children in their own process group when detached', async () => {
    const { out } = await run(spawner, 'ps -o pgid= -p $$', {});
    const child = await step('detached spawn', spawner.spawn(['/bin/sh', '-c', 'ps -o pgid= -p $$'], { pipes: 3, detached: true, env }));
    const detachedOut = await step('detached stdout closing', read(child.stdout));
    expect(Number(detachedOut.trim())).toBe(child.pid);
    expect(Number(out.trim())).not.toBe(Number(detachedOut.trim()));
  });
});

describe('spawn host environment', () => {
  it("runs with the minimal base environment, not the server's", async () => {
    const spawner = new HostSpawner();
    // The child's parent is the host: its environ is what the host was forked with.
    const { out } = await run(spawner, 'tr "\\0" "\\n" < /proc/$PPID/environ', {});
    spawner.close();
    expect(out).toContain('PATH=');
    expect(out).not.toContain(CANARY);
  });

  it('refuses a request without an environment instead of passing its own on', async () => {
    const spawner = new HostSpawner();
    const noEnv = { pipes: 3 } as unknown as Parameters<Spawner['spawn']>[1];
    await expect(spawner.spawn(['/bin/sh', '-c', 'env'], noEnv)).rejects.toThrow(/no environment/);
    spawner.close();
  });
});
