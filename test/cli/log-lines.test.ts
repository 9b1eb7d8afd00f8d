/** Server logs: one readable line per record on a terminal (src/core/log-lines.ts), JSON otherwise. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { prettyLine } from '../../src/core/log-lines.js';
import { ADMIN_PASSWORD, CLI, spawnServer, tempDir } from '../helpers/server.js';

vi.setConfig({ testTimeout: 120_000 });

describe('pretty log lines', () => {
  const at = new Date(2026, 0, 2, 9, 14, 25, 123).getTime();

  it('time, level, message, then the fields flattened one level', () => {
    const json = JSON.stringify({ level: 30, time: at, pid: 1, hostname: 'h', url: 'http://127.0.0.1:8080', data: '/a b', req: { method: 'GET', url: '/x' }, msg: 'corral is listening' });
    expect(prettyLine(json, false)).toBe('09:14:25.123 INFO  corral is listening  url=http://127.0.0.1:8080 data="/a b" req.method=GET req.url=/x\n');
  });

  it('colours the level on a colour terminal', () => {
    expect(prettyLine(JSON.stringify({ level: 40, time: at, msg: 'careful' }), true)).toBe('09:14:25.123 \x1b[33mWARN \x1b[0m careful\n');
  });

  it("an error's type and message on the line; its stack under an ERROR", () => {
    const err = { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (x.js:1:1)\n    at g (y.js:2:2)' };
    expect(prettyLine(JSON.stringify({ level: 50, time: at, err, msg: 'request failed' }), false)).toBe(
      '09:14:25.123 ERROR request failed  err="Error: boom"\n    at f (x.js:1:1)\n    at g (y.js:2:2)\n',
    );
    expect(prettyLine(JSON.stringify({ level: 40, time: at, err, msg: 'retrying' }), false)).toBe('09:14:25.123 WARN  retrying  err="Error: boom"\n');
  });

  it('leaves text that is not a record as it is', () => {
    expect(prettyLine('not json', false)).toBe('not json\n');
  });
});

describe('corral serve', () => {
  it('logs JSON when stdout is not a terminal', async () => {
    const data = await tempDir('corral-log-json-');
    const server = await spawnServer(data); // it finds the URL in the JSON line "corral is listening"
    try {
      const first = server.output().split('\n').find((l) => l.includes('corral is listening'))!;
      expect(JSON.parse(first)).toMatchObject({ level: 30, msg: 'corral is listening' });
    } finally {
      await server.kill();
      await rm(data, { recursive: true, force: true });
    }
  });

  it.skipIf(!existsSync('/usr/bin/script'))('logs one readable line per record on a terminal', async () => {
    const data = await tempDir('corral-log-tty-');
    const cmd = `${process.execPath} ${CLI} serve --port 0 --data ${path.join(data, 'd')}`;
    // script(1) gives the server a pseudo-terminal as its stdout.
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], {
      env: { ...process.env, CORRAL_ADMIN_PASSWORD: ADMIN_PASSWORD, CORRAL_LOG_LEVEL: 'info', NO_COLOR: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await vi.waitFor(() => expect(out).toMatch(/corral is listening/), { timeout: 60_000, interval: 200 });
      const line = out.split(/\r?\n/).find((l) => l.includes('corral is listening'))!;
      expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  corral is listening  url=http:\/\/127\.0\.0\.1:\d+ data=/);
      expect(out).not.toMatch(/"level":/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('close', r));
      await rm(data, { recursive: true, force: true });
    }
  });
});
