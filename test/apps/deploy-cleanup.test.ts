/**
 * A deploy that fails leaves nothing behind in the data dir's tmp: not the uploaded archive
 * (`upload-…`), not the unpacked look at its Procfile (`inspect-…`), not the link a copy was
 * to take (`release-…`) — whether the archive is bad, has no Procfile, the options are
 * invalid, the quota refuses the copy or the release command fails.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { tarBytes } from '../sources/helpers/archives.js';
import { APPS_DOMAIN, deploy, webApp } from './helpers.js';

let server: TestServer;
let token: string;
/** bob may have one instance and has it: every copy of his is refused by the quota. */
let bobToken: string;

beforeAll(async () => {
  server = await startTestServer({ proxy: { appsDomain: APPS_DOMAIN }, apps: { drainSeconds: 1 } });
  token = await createUser(server, 'alice');
  bobToken = await createUser(server, 'bob');
  const quota = await api(server, server.adminToken, 'PATCH', '/api/v1/users/bob/quotas', { instances: 1 });
  expect(quota.status, JSON.stringify(quota.body)).toBe(200);
  const busy = await api(server, bobToken, 'POST', '/api/v1/instances', { name: 'busy', command: [process.execPath, '-e', 'setInterval(() => {}, 1e6)'] });
  expect(busy.status, JSON.stringify(busy.body)).toBe(201);
});
afterAll(() => server.stop());

const leftInTmp = async () => (await readdir(path.join(server.data, 'tmp')).catch(() => [] as string[])).sort();

/** The multipart body with the archive first, so the options are read after the file is written. */
async function deployArchiveFirst(name: string, archive: Buffer, options: string) {
  const form = new FormData();
  form.append('archive', new Blob([new Uint8Array(archive)]), 'app.tar.gz');
  form.append('options', options);
  const res = await fetch(`${server.url}/api/v1/apps/${name}/releases`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  return { status: res.status, body: await res.json() };
}

describe('a failed deploy leaves nothing in tmp', () => {
  it('a file that is no archive', async () => {
    const res = await deploy(server, token, 'junk', Buffer.from('this is not a tar, a tar.gz nor a zip'));
    expect(res.status).toBe(400);
    expect(await leftInTmp()).toEqual([]);
  });

  it('an archive without a Procfile', async () => {
    const res = await deploy(server, token, 'bare', tarBytes([{ path: 'readme', body: 'x' }]));
    expect(res.body.error.code).toBe('no_procfile');
    expect(await leftInTmp()).toEqual([]);
  });

  it('options that are not valid JSON, or not valid options, after the archive', async () => {
    const notJson = await deployArchiveFirst('opts', webApp('o1'), '{nope');
    expect(notJson.status).toBe(400);
    const invalid = await deployArchiveFirst('opts', webApp('o1'), JSON.stringify({ settings: 'many' }));
    expect(invalid.status).toBe(400);
    expect(await leftInTmp()).toEqual([]);
  });

  it('a copy the quota refuses', async () => {
    const res = await deploy(server, bobToken, 'shop', webApp('q1'));
    expect(res.status, JSON.stringify(res.body)).toBe(403);
    expect(res.body.error.code).toBe('quota_exceeded');
    expect(await leftInTmp()).toEqual([]);
  });

  it('a release command that fails', async () => {
    const release = await deploy(server, token, 'build', webApp('r1', { procfile: 'release: exit 3\nweb: node server.js\n' }));
    expect(release.status).toBe(422);
    expect(await leftInTmp()).toEqual([]);
  });
});
