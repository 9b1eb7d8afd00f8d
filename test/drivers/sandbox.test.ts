/**
 * The building blocks the process driver and the job runner share: sandboxArgv's hiding
 * rules (checked on the argv, then for real under bwrap) and the launcher's rlimits and
 * cgroup join.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSandbox } from '../../src/drivers/process/detect.js';
import { LAUNCH_FAILED_EXIT, launchArgv } from '../../src/drivers/process/launcher.js';
import { sandboxArgv, type SandboxSpec } from '../../src/drivers/process/sandbox.js';
import { makeDirs, removeDirs, sandboxSpec, type DriverTestDirs } from './harness.js';

const sandbox = await detectSandbox();

function runArgv(argv: string[]) {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' }, timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('sandboxArgv', () => {
  let dirs: DriverTestDirs;
  const base = (extra: Partial<SandboxSpec> = {}): SandboxSpec => sandboxSpec(sandbox.path ?? 'bwrap', extra);
  beforeAll(async () => {
    dirs = await makeDirs();
  });
  afterAll(async () => {
    if (dirs) await removeDirs(dirs);
  });

  it('never binds the sensitive parts of /etc', () => {
    const argv = sandboxArgv(base());
    for (const secret of ['/etc/shadow', '/etc/gshadow', '/etc/sudoers', '/etc/ssh', '/etc/ssl/private']) {
      expect(argv).not.toContain(secret);
    }
    expect(argv).toContain('/etc/passwd');
  });

  it('covers a hidden path with a tmpfs under every bind that would show it, except the granted dir itself', () => {
    const own = path.join(dirs.corralData, 'instances', 'a', 'data');
    const argv = sandboxArgv(base({
      readOnly: [{ source: dirs.root, target: '/mnt/root' }],
      writable: [{ source: own, target: '/data' }],
      hide: [dirs.corralData],
    }));
    const overlay = argv.indexOf('/mnt/root/corral-data');
    expect(argv[overlay - 1]).toBe('--tmpfs');
    // The granted data dir is bound after the overlay, so the overlay cannot cover it.
    expect(argv.indexOf(own)).toBeGreaterThan(overlay);
    // The data dir itself lies inside the hidden path: nothing to cover below it.
    expect(argv.filter((a) => a.startsWith('/data/'))).toEqual([]);
  });

  it('adds --unshare-net only without network, and ends with -- and the command', () => {
    expect(sandboxArgv(base({ network: false }))).toContain('--unshare-net');
    const online = sandboxArgv(base({ network: true, command: ['echo', '--', 'x'] }));
    expect(online).not.toContain('--unshare-net');
    expect(online.slice(online.indexOf('--'))).toEqual(['--', 'echo', '--', 'x']);
  });

  it.skipIf(!sandbox.available)('really hides the path and keeps the granted dir writable', async () => {
    const own = path.join(dirs.corralData, 'instances', 'b', 'data');
    await mkdir(own, { recursive: true });
    await writeFile(path.join(dirs.root, 'public.txt'), 'public\n');
    const r = runArgv(sandboxArgv(base({
      command: ['sh', '-c', 'cat /mnt/root/public.txt; ls -A /mnt/root/corral-data; echo mine > /data/f && cat /data/f'],
      readOnly: [{ source: dirs.root, target: '/mnt/root' }],
      writable: [{ source: own, target: '/data' }],
      hide: [dirs.corralData],
    })));
    expect(r).toMatchObject({ code: 0, stdout: 'public\nmine\n' });
  });
});

describe('launchArgv', () => {
  it('applies rlimits before exec', () => {
    const r = runArgv(launchArgv({ rlimits: { openFiles: 123, fileSizeBytes: 512 * 1024 } }, ['sh', '-c', 'ulimit -n; ulimit -f; ulimit -c']));
    expect(r).toMatchObject({ code: 0, stdout: '123\n1024\n0\n' });
  });

  it('a file bigger than the size rlimit cannot be written', () => {
    const r = runArgv(launchArgv({ rlimits: { fileSizeBytes: 4096 } }, ['sh', '-c', 'head -c 100000 /dev/zero > /dev/shm/corral-fsize-$$; s=$?; rm -f /dev/shm/corral-fsize-$$; exit $s']));
    expect(r.code).not.toBe(0);
  });

  it(`exits ${LAUNCH_FAILED_EXIT} without running the command when it cannot join a cgroup`, () => {
    const r = runArgv(launchArgv({ procsFiles: ['/nonexistent/cgroup.procs'] }, ['sh', '-c', 'echo ran']));
    expect(r.code).toBe(LAUNCH_FAILED_EXIT);
    expect(r.stdout).toBe('');
  });

  it('passes arguments through untouched, dashes and spaces included', () => {
    const r = runArgv(launchArgv({}, ['printf', '%s|', '--', 'a b', '-n']));
    expect(r).toMatchObject({ code: 0, stdout: '--|a b|-n|' });
  });
});
