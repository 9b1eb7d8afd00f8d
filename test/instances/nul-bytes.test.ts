/**
 * NUL bytes can never reach a process (argv, env and shell lines are C strings): they are refused
 * at the door with 400 `validation_failed` naming the field — in the native API (JSON and
 * multipart) and smartmob-agent's create-process — and nothing is created. A Procfile holding one
 * is a `procfile_invalid` source error naming its line.
 *
 * In a workload's output they are kept: a NUL is U+0000 in the attached client's frame, the tail
 * and the file (escaped there as JSON writes it), and bytes that are not UTF-8 become U+FFFD alike.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseProcfile } from '../../src/core/sources/procfile.js';
import { api, type TestServer } from '../helpers/server.js';
import { oldClient, procfileApp, startCompatServer } from '../compat/helpers.js';
import { createInstance, openStream, waitFor } from './helpers.js';

let server: TestServer;

beforeAll(async () => {
  server = await startCompatServer({ smartmobAgent: {} });
});
afterAll(() => server?.stop());

const NUL = '\u0000';

const refused = (res: { status: number; body: any }, field: string) => {
  expect(res.status).toBe(400);
  expect(res.body.error.code).toBe('validation_failed');
  expect(res.body.error.message).toContain(field);
};

async function instanceCount(): Promise<number> {
  const list = await api(server, server.adminToken, 'GET', '/api/v1/instances');
  return (list.body.instances ?? list.body).length;
}

describe('NUL bytes', () => {
  it('are refused in env values and names, argv, the shell line and a source URL, naming the field', async () => {
    const before = await instanceCount();
    const create = (spec: Record<string, unknown>) => api(server, server.adminToken, 'POST', '/api/v1/instances', { name: 'nul', ...spec });
    const value = await create({ command: ['true'], env: { GREETING: `hi${NUL}there` } });
    refused(value, 'body.env.GREETING');
    expect(value.body.error.message).toContain('must not contain NUL bytes');
    refused(await create({ command: ['true'], env: { [`GREE${NUL}TING`]: 'hi' } }), 'body.env');
    const arg = await create({ command: ['echo', `a${NUL}b`] });
    refused(arg, 'body.command.1');
    expect(arg.body.error.message).toContain('must not contain NUL bytes');
    refused(await create({ command: [`ec${NUL}ho`] }), 'body.command.0');
    refused(await create({ shell: `echo hi${NUL}` }), 'body.shell');
    refused(await create({ source: { url: `http://127.0.0.1/app${NUL}.tgz` } }), 'body.source.url');
    // A change to an existing instance is held to the same rule.
    const made = await create({ command: ['sleep', '600'] });
    expect(made.status).toBe(201);
    refused(await api(server, server.adminToken, 'PATCH', `/api/v1/instances/${made.body.id}`, { env: { A: NUL } }), 'body.env.A');
    await api(server, server.adminToken, 'DELETE', `/api/v1/instances/${made.body.id}`);
    expect(await instanceCount()).toBe(before);
  });

  it('are refused in the spec of a multipart create', async () => {
    const before = await instanceCount();
    const form = new FormData();
    form.append('spec', JSON.stringify({ name: 'nul-upload', process: 'web', env: { MODE: `x${NUL}` } }));
    form.append('archive', new Blob([new Uint8Array(procfileApp({ Procfile: 'web: sleep 600\n' }))]), 'app.tar.gz');
    const res = await fetch(`${server.url}/api/v1/instances`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}` }, body: form });
    refused({ status: res.status, body: await res.json() }, 'spec.env.MODE');
    expect(await instanceCount()).toBe(before);
  });

  it('are refused by smartmob-agent’s create-process', async () => {
    const root = server.compat.smartmobAgent!;
    const auth = { authorization: `Bearer ${server.adminToken}` };
    const create = (body: Record<string, unknown>) => oldClient('POST', `${root}/create-process`, { body: JSON.stringify(body), headers: auth });
    const base = { app: 'nul', node: 'n0', process_type: 'web', source_url: 'http://127.0.0.1:1/app.tar.gz' };
    refused(await create({ ...base, env: { K: `v${NUL}` } }), 'env.K');
    refused(await create({ ...base, source_url: `http://127.0.0.1:1/a${NUL}.tgz` }), 'source_url');
    const listed = await oldClient('GET', `${root}/list-processes`, { headers: auth });
    expect(listed.body.processes).toEqual([]);
  });

  it('in a Procfile are a source error naming the line', async () => {
    expect(() => parseProcfile(`web: echo hi\nworker: echo a${NUL}b\n`)).toThrow(
      expect.objectContaining({ code: 'procfile_invalid', status: 400, message: 'Procfile line 2: contains a NUL byte' }),
    );
    // An uploaded app is unpacked when it starts: it fails with that error, never runs.
    const form = new FormData();
    form.append('spec', JSON.stringify({ name: 'nul-procfile', process: 'web' }));
    form.append('archive', new Blob([new Uint8Array(procfileApp({ Procfile: `web: sleep 600${NUL}\n` }))]), 'app.tar.gz');
    const res = await fetch(`${server.url}/api/v1/instances`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}` }, body: form });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const failed = await waitFor(server, server.adminToken, id, (i: { state: string }) => i.state === 'failed');
    expect(failed.lastError).toBe('procfile_invalid: Procfile line 1: contains a NUL byte');
    await api(server, server.adminToken, 'DELETE', `/api/v1/instances/${id}`);
  });

  it('in output reach the attached client, the tail and the file as U+0000; bytes that are not UTF-8 as U+FFFD', async () => {
    const inst = await createInstance(server, server.adminToken, {
      name: 'nul-output',
      // Reads apart: a NUL b and a quote and a tab (valid UTF-8, escaped in the file); an invalid byte (0xff) then c; a plain line.
      shell: `sleep 1; printf 'a\\000b\\n"q"\\tt\\n'; sleep 0.3; printf '\\377c\\n'; sleep 0.3; printf 'plain\\n'; sleep 1000`,
    });
    const expected = [`a${NUL}b`, '"q"\tt', '\ufffdc', 'plain'];
    const auth = { authorization: `Bearer ${server.adminToken}` };
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/v1/instances/${inst.id}/attach`, { headers: auth });
    const frames: string[] = [];
    await new Promise<void>((resolve) =>
      ws.on('message', (d) => {
        frames.push(...d.toString().split('\n'));
        if (frames.includes('plain')) resolve();
      }),
    );
    ws.close();
    expect(frames).toEqual(expected);
    // The tail (follow starts with it) and the file (logs without follow reads it).
    const follow = await openStream(`${server.url}/api/v1/instances/${inst.id}/logs?follow=true&format=ndjson`, auth);
    const tail = (await follow.until('"plain"'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { stream: string; line: string })
      .filter((r) => r.stream === 'stdout');
    await follow.close();
    expect(tail.map((r) => r.line)).toEqual(expected);
    const kept = await (await fetch(`${server.url}/api/v1/instances/${inst.id}/logs?format=ndjson`, { headers: auth })).text();
    const fromFile = kept.trimEnd().split('\n').map((l) => JSON.parse(l) as { stream: string; line: string }).filter((r) => r.stream === 'stdout');
    expect(fromFile.map((r) => r.line)).toEqual(expected);
    const file = await readFile(path.join(server.data, 'instances', inst.id, 'logs', 'output.log'), 'utf8');
    expect(file).toContain('"l":"a\\u0000b"');
    expect(file).toContain('"l":"\\"q\\"\\tt"');
    expect(file).toContain('"l":"\ufffdc"');
    await api(server, server.adminToken, 'DELETE', `/api/v1/instances/${inst.id}`);
  });
});
