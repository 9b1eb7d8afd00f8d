import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, createUser, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { processesWith } from './helpers.js';

/** Runs the built CLI; resolves with its exit code and output, noting when stdout first arrived. */
function corral(args: string[], env: NodeJS.ProcessEnv, cwd: string) {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, cwd });
  let stdout = '';
  let stderr = '';
  let firstOutputAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    firstOutputAt ||= Date.now();
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string; firstOutputAt: number; endedAt: number }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr, firstOutputAt, endedAt: Date.now() })),
  );
}

describe('corral job run', () => {
  let server: TestServer;
  let env: NodeJS.ProcessEnv;
  let dir: string;
  beforeAll(async () => {
    server = await startTestServer();
    env = { CORRAL_URL: server.url, CORRAL_TOKEN: await createUser(server, 'alice'), HOME: await tempDir() };
    dir = await tempDir();
  });
  afterAll(() => server.stop());

  it('runs a python file with its helper and stdin, streams output and exits with the job’s code', async () => {
    await writeFile(path.join(dir, 'hello.py'), 'import sys, time, helper\nprint(helper.twice(sys.stdin.read().strip()), flush=True)\ntime.sleep(1)\nprint("late", file=sys.stderr)\nsys.exit(7)\n');
    await writeFile(path.join(dir, 'helper.py'), 'def twice(s): return s + s\n');
    await writeFile(path.join(dir, 'in.txt'), 'ab\n');
    const r = await corral(['job', 'run', '--runtime', 'python', 'hello.py', 'helper.py', '--stdin', 'in.txt'], env, dir);
    expect(r.stdout).toBe('abab\n');
    expect(r.stderr).toBe('late\n');
    expect(r.code).toBe(7);
    // Printed while the job still ran (it sleeps a second after the first line).
    expect(r.endedAt - r.firstOutputAt).toBeGreaterThan(700);
  });

  it('saves the output file and reports a timeout with exit code 124', async () => {
    await writeFile(path.join(dir, 'make.sh'), 'echo "<b>hi</b>" > page.html\n');
    const ok = await corral(['job', 'run', '-r', 'sh', 'make.sh', '-o', 'page.html', '--save-output', 'got.html'], env, dir);
    expect(ok.code).toBe(0);
    expect(await readFile(path.join(dir, 'got.html'), 'utf8')).toBe('<b>hi</b>\n');
    const slow = await corral(['job', 'run', '-r', 'sh', '-e', 'sleep 10', '-t', '1', 'make.sh'], env, dir);
    expect(slow.code).toBe(124);
    expect(slow.stderr).toMatch(/job timeout/);
  });

  it('guesses the runtime from the extension: main.c compiles and runs', async () => {
    await writeFile(path.join(dir, 'main.c'), '#include <stdio.h>\nint main(void){puts("from c"); return 4;}\n');
    const r = await corral(['job', 'run', 'main.c'], env, dir);
    expect(r.stdout).toBe('from c\n');
    expect(r.code).toBe(4);
    const json = await corral(['job', 'run', '--json', 'main.c'], env, dir);
    expect(JSON.parse(json.stdout)).toMatchObject({ runtime: 'c', status: 'error', exitCode: 4, compile: { status: 'ok' } });
    await writeFile(path.join(dir, 'notes.xyz'), 'hello');
    const unknown = await corral(['job', 'run', 'notes.xyz'], env, dir);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/--runtime: no runtime takes "\.xyz" files; name one with --runtime \(known: .*python/);
  });

  it('cancels the job on Ctrl-C and exits 130, its processes gone', async () => {
    const marker = `91${process.pid}5`;
    await writeFile(path.join(dir, 'long.sh'), `echo started\nsetsid sleep ${marker} &\nexec sleep ${marker}\n`);
    const child = spawn(process.execPath, [CLI, 'job', 'run', 'long.sh', '-t', '25'], { env: { ...process.env, ...env }, cwd: dir });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), stdout.includes('started') && resolve())));
    expect((await processesWith(marker)).length).toBeGreaterThanOrEqual(1);
    child.kill('SIGINT');
    const code = await new Promise((r) => child.on('close', r));
    expect(code).toBe(130);
    expect(stderr).toMatch(/cancelling job/);
    expect(stderr).toMatch(/job killed: cancelled/);
    expect(await processesWith(marker)).toEqual([]);
  });

  it('takes units for -t and -m, and errors name the flag', async () => {
    await writeFile(path.join(dir, 'mem.sh'), 'echo ok\n');
    const ok = await corral(['job', 'run', 'mem.sh', '-t', '1500ms', '-m', '64M', '--json'], env, dir);
    expect(ok.code).toBe(0);
    const id = JSON.parse(ok.stdout).id;
    const stored = await fetch(`${server.url}/api/v1/jobs/${id}`, { headers: { authorization: `Bearer ${env.CORRAL_TOKEN}` } }).then((r) => r.json());
    expect(stored.status).toBe('ok');
    const cut = await corral(['job', 'run', '-e', 'sleep 3', '-t', '300ms', 'mem.sh'], env, dir);
    expect(cut.code).toBe(124);
    const badSize = await corral(['job', 'run', 'mem.sh', '-m', '64X'], env, dir);
    expect(badSize.code).toBe(1);
    expect(badSize.stderr).toMatch(/-m: "64X" is not a size/);
    const small = await corral(['job', 'run', 'mem.sh', '--memory', '1M'], env, dir);
    expect(small.stderr).toMatch(/--memory: at least 4M/);
    const long = await corral(['job', 'run', 'mem.sh', '-t', '2m'], env, dir);
    expect(long.stderr).toMatch(/-t: at most 30s on this server \(got 2m\)/);
  });

  it('names the known runtimes for an unknown one', async () => {
    const r = await corral(['job', 'run', '-r', 'cobol', 'make.sh'], env, dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown_runtime: .*known: .*python/);
  });
});
