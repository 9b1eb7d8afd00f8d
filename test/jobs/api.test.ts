import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { runJob, waitDone } from './helpers.js';

describe('jobs API', () => {
  let server: TestServer;
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    server = await startTestServer({ jobs: { poolSize: 2 } });
    alice = await createUser(server, 'alice');
    bob = await createUser(server, 'bob');
  });
  afterAll(() => server.stop());

  it('lists the installed runtimes with versions', async () => {
    const res = await api(server, alice, 'GET', '/api/v1/runtimes');
    expect(res.status).toBe(200);
    const byName = Object.fromEntries(res.body.runtimes.map((r: { name: string }) => [r.name, r]));
    expect(byName.sh.command).toBe('sh main.sh');
    expect(byName.python.version).toMatch(/^Python 3\./);
    expect(byName.node.version).toMatch(/^v\d+/);
    expect(byName.ruby.version).toMatch(/^ruby 3/);
  });

  it('runs a python program with its files and returns stdout, stderr and the exit code', async () => {
    const res = await runJob(server, alice, {
      runtime: 'python',
      files: { 'main.py': 'import sys, lib.helper as h\nprint(h.greet())\nprint("oops", file=sys.stderr)\nsys.exit(3)', 'lib/helper.py': 'def greet(): return "hello"', 'lib/__init__.py': '' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ state: 'done', status: 'error', exitCode: 3, stdout: 'hello\n', stderr: 'oops\n', user: 'alice' });
    expect(res.body.wallMs).toBeGreaterThan(0);
    expect(res.body.memoryPeakBytes).toBeGreaterThan(0);
  });

  it('runs an entry command with quoted args and reports ok', async () => {
    const res = await runJob(server, alice, { runtime: 'sh', entry: 'printf "%s|"', args: ['a b', "it's", '$HOME', ';', 'echo'] });
    expect(res.body.status).toBe('ok');
    expect(res.body.stdout).toBe("a b|it's|$HOME|;|echo|");
  });

  it('runs ruby', async () => {
    const res = await runJob(server, alice, { runtime: 'ruby', files: { 'main.rb': 'puts [1, 2, 3].sum' } });
    expect(res.body).toMatchObject({ status: 'ok', stdout: '6\n' });
  });

  it('feeds stdin', async () => {
    const res = await runJob(server, alice, { runtime: 'node', files: { 'main.js': 'process.stdin.pipe(process.stdout)' }, stdin: 'line one\nline two\n' });
    expect(res.body.stdout).toBe('line one\nline two\n');
  });

  it('returns the output file with the MIME type from its extension', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
    const res = await runJob(server, alice, {
      runtime: 'sh',
      files: { 'in.bin': { content: png.toString('base64'), encoding: 'base64' }, 'main.sh': 'mkdir -p out && cp in.bin out/picture.png' },
      output: 'out/picture.png',
    });
    expect(res.body.status).toBe('ok');
    expect(res.body.outputFile).toEqual({ name: 'picture.png', mimeType: 'image/png', content: png.toString('base64') });
  });

  it('does not return an output file that is a symlink out of the job dir', async () => {
    const res = await runJob(server, alice, { runtime: 'sh', entry: 'ln -s /etc/passwd out.txt', output: 'out.txt' });
    expect(res.body.outputFile).toBeNull();
    expect(res.body.note).toMatch(/symbolic link/);
  });

  it('refuses an unknown runtime with 400 listing the known ones', async () => {
    const res = await runJob(server, alice, { runtime: 'cobol', entry: 'true' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('unknown_runtime');
    expect(res.body.error.known).toEqual(expect.arrayContaining(['node', 'python', 'sh']));
  });

  const badPaths: [string, RegExp][] = [
    ['../escape.sh', /"\.\."/],
    ['a/../../b', /"\.\."/],
    ['/etc/passwd', /absolute/],
    ['a\\..\\b', /backslash/],
    ['nul\0byte', /NUL/],
    ['bell\x07', /control character/],
    ['a//b', /empty segment/],
    ['dir/', /empty segment/],
    ['./x', /"\."/],
    ['x'.repeat(600), /longer than 512/],
    [`${'y'.repeat(300)}/z`, /segment is longer/],
    ['', /empty/],
  ];
  it.each(badPaths)('refuses the file path %j with 400 naming it', async (p, why) => {
    const res = await runJob(server, alice, { runtime: 'sh', files: { [p]: 'x', 'main.sh': 'true' } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('bad_file');
    expect(res.body.error.message).toMatch(why);
    expect(res.body.error.file).toBe(p);
  });

  it('refuses a file that is also used as a directory', async () => {
    const res = await runJob(server, alice, { runtime: 'sh', files: { a: 'x', 'a/b': 'y' } });
    expect(res.status).toBe(400);
    expect(res.body.error.file).toBe('a/b');
  });

  it('refuses bad base64, too many files and too many bytes', async () => {
    const b64 = await runJob(server, alice, { runtime: 'sh', files: { 'x.bin': { content: 'not base64!', encoding: 'base64' } } });
    expect(b64.status).toBe(400);
    expect(b64.body.error.message).toMatch(/base64/);
    const many = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`f${i}`, '']));
    const count = await runJob(server, alice, { runtime: 'sh', files: many });
    expect(count.status).toBe(400);
    expect(count.body.error.message).toMatch(/too many files/);
    const big = await runJob(server, alice, { runtime: 'sh', files: { 'a.txt': 'a'.repeat(5 << 20), 'b.txt': 'b'.repeat(4 << 20) } });
    expect(big.status).toBe(400);
    expect(big.body.error.file).toBe('b.txt');
  });

  it('refuses an output path that is not safe', async () => {
    const res = await runJob(server, alice, { runtime: 'sh', entry: 'true', output: '../../etc/passwd' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('bad_file');
  });

  it('refuses limits beyond the server caps, unknown fields and the network', async () => {
    const timeout = await runJob(server, alice, { runtime: 'sh', entry: 'true', timeoutSeconds: 31 });
    expect(timeout.status).toBe(400);
    expect(timeout.body.error.message).toMatch(/timeoutSeconds: at most 30/);
    const mem = await runJob(server, alice, { runtime: 'sh', entry: 'true', limits: { memoryBytes: 64 << 30 } });
    expect(mem.status).toBe(400);
    expect(mem.body.error.message).toMatch(/limits.memoryBytes/);
    const unknown = await runJob(server, alice, { runtime: 'sh', entry: 'true', image: 'evil' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/unknown field "image"/);
    const net = await runJob(server, alice, { runtime: 'sh', entry: 'true', network: true });
    expect(net.status).toBe(403);
    expect(net.body.error.message).toMatch(/allowNetwork/);
  });

  it('answers 202 with wait=false; GET returns the result; others get 404', async () => {
    const res = await runJob(server, alice, { runtime: 'sh', entry: 'sleep 0.3; echo later' }, false);
    expect(res.status).toBe(202);
    expect(['queued', 'running']).toContain(res.body.state);
    expect(res.headers.get('location')).toBe(`/api/v1/jobs/${res.body.id}`);
    const done = await waitDone(server, alice, res.body.id);
    expect(done.body).toMatchObject({ state: 'done', status: 'ok', stdout: 'later\n' });
    expect((await api(server, bob, 'GET', `/api/v1/jobs/${res.body.id}`)).status).toBe(404);
    expect((await api(server, server.adminToken, 'GET', `/api/v1/jobs/${res.body.id}`)).status).toBe(200);
    const mine = await api(server, alice, 'GET', '/api/v1/jobs');
    expect(mine.body.jobs.map((j: { id: string }) => j.id)).toContain(res.body.id);
    const theirs = await api(server, bob, 'GET', '/api/v1/jobs');
    expect(theirs.body.jobs.map((j: { id: string }) => j.id)).not.toContain(res.body.id);
  });

  it('needs the jobs scopes', async () => {
    expect((await api(server, undefined, 'GET', '/api/v1/jobs')).status).toBe(401);
    const session = await import('../helpers/server.js').then((m) => m.login(server.url, 'alice', 'alice-password'));
    const { createToken } = await import('../helpers/server.js');
    const readOnly = await createToken(server.url, session, 'ro', ['jobs:read']);
    expect((await api(server, readOnly, 'GET', '/api/v1/jobs')).status).toBe(200);
    const post = await runJob(server, readOnly, { runtime: 'sh', entry: 'true' });
    expect(post.status).toBe(403);
  });
});
