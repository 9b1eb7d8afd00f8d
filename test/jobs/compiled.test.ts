/**
 * Compiled runtimes (c, cpp, java): the compile step and the run step reported apart; a
 * compile error is `compile-error` with the compiler's message, a crash at run time is a run
 * failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { runJob } from './helpers.js';

const step = {
  status: expect.any(String),
  exitCode: expect.anything(),
  wallMs: expect.any(Number),
  cpuMs: expect.any(Number),
  memoryPeakBytes: expect.any(Number),
};

describe('compiled runtimes', () => {
  let server: TestServer;
  let alice: string;
  beforeAll(async () => {
    server = await startTestServer({ jobs: { poolSize: 2, maxTimeoutSeconds: 60 } });
    alice = await createUser(server, 'alice');
  });
  afterAll(() => server.stop());

  it('lists c, cpp and java with their compile command', async () => {
    const res = await api(server, alice, 'GET', '/api/v1/runtimes');
    const byName = Object.fromEntries(res.body.runtimes.map((r: { name: string }) => [r.name, r]));
    expect(byName.c).toMatchObject({ command: './main', entryFile: 'main.c', compileCommand: expect.stringMatching(/^gcc /), version: expect.stringMatching(/gcc/) });
    expect(byName.cpp).toMatchObject({ entryFile: 'main.cpp', compileCommand: expect.stringMatching(/^g\+\+ /) });
    expect(byName.java).toMatchObject({ entryFile: 'Main.java', compileCommand: expect.stringMatching(/^javac /) });
    expect(byName.sh.compileCommand).toBeNull();
  });

  it('compiles and runs C with several files, stdin and the math library; both steps reported', async () => {
    const res = await runJob(server, alice, {
      runtime: 'c',
      files: {
        'main.c': '#include <stdio.h>\n#include <math.h>\n#include "twice.h"\nint main(void){int n; scanf("%d",&n); printf("%d %.1f\\n", twice(n), sqrt(16.0)); return 0;}\n',
        'twice.c': 'int twice(int n){return 2*n;}\n',
        'twice.h': 'int twice(int n);\n',
      },
      stdin: '21\n',
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', exitCode: 0, stdout: '42 4.0\n', stderr: '' });
    expect(res.body.compile).toMatchObject({ ...step, status: 'ok', exitCode: 0 });
    // The compiler's time is its own, not the run's.
    expect(res.body.compile.cpuMs).toBeGreaterThan(res.body.cpuMs);
    expect(res.body.cases).toBeNull();
  });

  it('a compile error is compile-error with the compiler’s message; nothing runs', async () => {
    const res = await runJob(server, alice, { runtime: 'c', files: { 'main.c': 'int main(void) { return missing_thing; }\n' } });
    expect(res.body.status).toBe('compile-error');
    expect(res.body.exitCode).not.toBe(0);
    expect(res.body.stderr).toMatch(/missing_thing/);
    expect(res.body.compile).toMatchObject({ status: 'error', stderr: expect.stringMatching(/error: .*missing_thing/) });
  });

  it('a crash at run time is a run failure, not a compile error', async () => {
    const res = await runJob(server, alice, {
      runtime: 'cpp',
      files: { 'main.cpp': '#include <iostream>\nint main(){ std::cout << "before" << std::endl; int *p = nullptr; return *p; }\n' },
    });
    expect(res.body.compile.status).toBe('ok');
    expect(res.body.status).toBe('error');
    expect(res.body.signal).toBe('SIGSEGV');
    expect(res.body.stdout).toBe('before\n');
  });

  it('runs Java', async () => {
    const res = await runJob(server, alice, {
      runtime: 'java',
      files: { 'Main.java': 'public class Main { public static void main(String[] a) { System.out.println("hi from java " + (6 * 7)); } }\n' },
      timeoutSeconds: 30,
    });
    expect(res.body.compile.status).toBe('ok');
    expect(res.body).toMatchObject({ status: 'ok', stdout: 'hi from java 42\n' });
  });
});
