/**
 * Test images, built locally with `docker import` because nothing can be pulled here:
 * - corral-test/busybox:1 — busybox-static and its applets in /bin;
 * - corral-test/python:2 — the same plus the host's python3 with its shared libraries and
 *   standard library (tests, tkinter and the like left out), ctypes' libffi included.
 * Each is built once per engine: an image that exists already is kept.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Engine } from '../../src/drivers/docker/engine.js';
import { hasImage } from '../../src/drivers/docker/engine.js';

export const BUSYBOX_IMAGE = 'corral-test/busybox:1';
export const PYTHON_IMAGE = 'corral-test/python:2';

const BUSYBOX = '/bin/busybox';
const PYTHON = '/usr/bin/python3';
const PYTHON_SKIP = ['test', 'idlelib', 'tkinter', 'turtledemo', 'ensurepip', 'lib2to3', 'pydoc_data', 'distutils', 'unittest/test'];

/** Builds the test images that are missing. The python image only when the host has python3. */
export async function buildTestImages(engine: Engine): Promise<string[]> {
  const built: string[] = [];
  if (!(await hasImage(engine, BUSYBOX_IMAGE))) {
    await importRootfs(engine, BUSYBOX_IMAGE, (dir) => busyboxTree(dir), []);
    built.push(BUSYBOX_IMAGE);
  }
  if (existsSync(PYTHON) && !(await hasImage(engine, PYTHON_IMAGE))) {
    const stdlib = pythonStdlib();
    await importRootfs(engine, PYTHON_IMAGE, (dir) => {
      busyboxTree(dir);
      pythonTree(dir);
    }, stdlib ? ['--exclude=__pycache__/*.opt-*.pyc', ...PYTHON_SKIP.map((d) => `--exclude=${stdlib.slice(1)}/${d}`), '-C', '/', stdlib.slice(1)] : []);
    built.push(PYTHON_IMAGE);
  }
  return built;
}

/** Stages a tree with `stage`, then streams it (plus `extraTarArgs` from the host) into the engine. */
async function importRootfs(engine: Engine, ref: string, stage: (dir: string) => void, extraTarArgs: string[]): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'corral-rootfs-'));
  try {
    stage(dir);
    const tar = spawn('tar', ['-c', '-C', dir, '.', ...extraTarArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    const tarDone = new Promise<number | null>((resolve) => tar.once('close', resolve));
    const [repo, tag] = ref.split(':') as [string, string];
    const stream = await engine.importImage(tar.stdout as unknown as string, { repo, tag });
    await new Promise<void>((resolve, reject) =>
      engine.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
    );
    const code = await tarDone;
    if (code !== 0) throw new Error(`tar of the ${ref} rootfs failed (${code})`);
    if (!(await hasImage(engine, ref))) throw new Error(`docker import of ${ref} did not produce it`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function busyboxTree(dir: string): void {
  for (const d of ['bin', 'etc', 'tmp', 'usr/bin', 'usr/local/bin']) mkdirSync(path.join(dir, d), { recursive: true, mode: 0o755 });
  copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', path.join(dir, 'bin', a));
  writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n');
  writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
}

/** python3 and the shared libraries ldd names, at the same paths as on the host. */
function pythonTree(dir: string): void {
  const real = execFileSync('readlink', ['-f', PYTHON], { encoding: 'utf8' }).trim();
  copyInto(dir, real, '/usr/bin/python3');
  const ldd = execFileSync('ldd', [real], { encoding: 'utf8' });
  const stdlib = pythonStdlib();
  for (const lib of [...[...ldd.matchAll(/(\/\S+\.so[.\d]*)/g)].map((m) => m[1]!), ...(stdlib ? ctypesLibs(stdlib) : [])]) {
    copyInto(dir, lib, lib.startsWith('/lib64/') ? lib : `/lib/x86_64-linux-gnu/${path.basename(lib)}`);
  }
}

function copyInto(root: string, from: string, to: string): void {
  mkdirSync(path.join(root, path.dirname(to)), { recursive: true });
  copyFileSync(from, path.join(root, to));
}

/** The shared libraries python's ctypes module needs beyond python3's own (libffi). */
function ctypesLibs(stdlib: string): string[] {
  try {
    const dynload = path.join(stdlib, 'lib-dynload');
    const mod = execFileSync('sh', ['-c', `ls ${dynload}/_ctypes.*.so`], { encoding: 'utf8' }).trim();
    const ldd = execFileSync('ldd', [mod], { encoding: 'utf8' });
    return [...ldd.matchAll(/=> (\/\S*libffi\S*)/g)].map((m) => m[1]!);
  } catch {
    return [];
  }
}

/** /usr/lib/python3.X of the host's python3. */
function pythonStdlib(): string | undefined {
  try {
    return execFileSync(PYTHON, ['-c', 'import sysconfig; print(sysconfig.get_paths()["stdlib"])'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}
