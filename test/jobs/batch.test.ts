/**
 * Batches: one request runs one program against many inputs — compiled once, each case in
 * the same sandbox under the same limits, each with its own result and (optionally) a
 * comparison with the expected output. Bad input is a 400 naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { runJob } from './helpers.js';

const SUM_C = '#include <stdio.h>\nint main(void){long a,b; if(scanf("%ld %ld",&a,&b)!=2) return 3; if(a<0) while(1); printf("%ld\\n",a+b); return 0;}\n';

describe('job batches', () => {
  let server: TestServer;
  let alice: string;
  beforeAll(async () => {
    server = await startTestServer({ jobs: { poolSize: 2, maxCases: 5, maxCaseBytes: 4096 } });
    alice = await createUser(server, 'alice');
  });
  afterAll(() => server.stop());

  it('compiles once and runs every case; one failing case does not stop the others', async () => {
    const res = await runJob(server, alice, {
      runtime: 'c',
      files: { 'main.c': SUM_C },
      timeoutSeconds: 1,
      compare: 'ignore-trailing-whitespace',
      cases: [
        { stdin: '1 2', expected: '3' },
        { stdin: '20 22', expected: '42  \n\n' },
        { stdin: '2 2', expected: '5' }, // wrong answer
        { stdin: 'x' }, // exits 3
        { stdin: '-1 0', expected: '-1' }, // loops until its timeout
        { stdin: '5 5', expected: '10' },
      ].slice(0, 5),
    });
    expect(res.status).toBe(200);
    expect(res.body.compile).toMatchObject({ status: 'ok' });
    const cases = res.body.cases as any[];
    expect(cases.map((c) => [c.status, c.exitCode, c.stdout, c.passed])).toEqual([
      ['ok', 0, '3\n', true],
      ['ok', 0, '42\n', true],
      ['ok', 0, '4\n', false],
      ['error', 3, '', null],
      ['timeout', 137, '', false],
    ]);
    for (const c of cases.slice(0, 4)) expect(c.cpuMs).toBeGreaterThanOrEqual(0);
    expect(cases[4].wallMs).toBeGreaterThanOrEqual(1000);
    // The job's own fields sum up: the first case that did not end ok, total time.
    expect(res.body).toMatchObject({ status: 'error', exitCode: null, stdout: '' });
    expect(res.body.wallMs).toBeGreaterThanOrEqual(cases.reduce((n, c) => n + c.wallMs, 0) - 0.01);
  });

  it('compares exactly by default', async () => {
    const res = await runJob(server, alice, {
      runtime: 'sh',
      entry: 'cat',
      cases: [{ stdin: 'a\n', expected: 'a\n' }, { stdin: 'a \n', expected: 'a\n' }, { stdin: 'b' }],
    });
    expect(res.body.status).toBe('ok');
    expect(res.body.cases.map((c: { passed: boolean | null }) => c.passed)).toEqual([true, false, null]);
    expect(res.body.compile).toBeNull();
  });

  it('runs a batch of a script runtime with a compile-free runtime, each case with fresh processes', async () => {
    const res = await runJob(server, alice, {
      runtime: 'python',
      files: { 'main.py': 'import os, sys\nprint(os.getpid() > 1, sys.stdin.read().upper(), end="")\n' },
      cases: [{ stdin: 'one' }, { stdin: 'two' }],
    });
    expect(res.body.cases.map((c: { stdout: string }) => c.stdout)).toEqual(['True ONE', 'True TWO']);
  });

  it('a compile error ends the batch before any case', async () => {
    const res = await runJob(server, alice, { runtime: 'c', files: { 'main.c': 'nope' }, cases: [{ stdin: '1 1' }] });
    expect(res.body.status).toBe('compile-error');
    expect(res.body.cases).toBeNull();
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['unknown runtime', { runtime: 'cobol', cases: [{}] }, /^runtime: unknown runtime "cobol"/],
    ['too many cases', { runtime: 'sh', entry: 'cat', cases: Array.from({ length: 6 }, () => ({ stdin: 'x' })) }, /^cases: at most 5 cases/],
    ['cases too large', { runtime: 'sh', entry: 'cat', cases: [{ stdin: 'x'.repeat(3000) }, { expected: 'y'.repeat(2000) }] }, /^cases: .*more than 4096 bytes/],
    ['an object as expected output', { runtime: 'sh', entry: 'cat', cases: [{ stdin: '1', expected: { text: '1' } }] }, /^body\.cases\.0\.expected: must be string/],
    ['an unknown case field', { runtime: 'sh', entry: 'cat', cases: [{ input: '1' }] }, /^body\.cases\.0: unknown field "input"/],
    ['no cases', { runtime: 'sh', entry: 'cat', cases: [] }, /^body\.cases: /],
    ['an unknown comparison', { runtime: 'sh', entry: 'cat', cases: [{}], compare: 'fuzzy' }, /^body\.compare: /],
    ['stdin beside cases', { runtime: 'sh', entry: 'cat', stdin: 'x', cases: [{}] }, /^stdin: /],
    ['an interactive batch', { runtime: 'sh', entry: 'cat', interactive: true, cases: [{}] }, /^interactive: /],
  ];
  it.each(bad)('refuses %s with 400 naming the field', async (_what, body, message) => {
    const res = await runJob(server, alice, body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(message);
  });
});
