/** Config errors stop startup naming the key; bad data directories and newer schemas too. */
import Database from 'better-sqlite3';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { runCli } from '../cli/run-cli.js';
import { startTestServer, tempDir } from '../helpers/server.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('corral-config-');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function configFile(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

describe('loadConfig', () => {
  it('layers file, then environment, then flags', async () => {
    const file = await configFile('layers.yaml', 'port: 9001\nhost: 0.0.0.0\nauth:\n  loginMaxFailures: 7\n');
    const c = loadConfig({ file, env: { CORRAL_PORT: '9002', CORRAL_AUTH__LOGIN_LOCK_SECONDS: '5' }, flags: { port: 9003 } });
    expect(c).toMatchObject({ port: 9003, host: '0.0.0.0', auth: { loginMaxFailures: 7, loginLockSeconds: 5 } });
  });

  it('names an unknown key in the file', async () => {
    const file = await configFile('unknown.yaml', 'port: 9001\nauth:\n  sessionTtl: 5\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/unknown config key "auth.sessionTtl"/);
  });

  it('names an unknown key in the environment', () => {
    expect(() => loadConfig({ env: { CORRAL_LISTEN_PORT: '80' } })).toThrow(/unknown config key "listenPort"/);
  });

  it('names the key holding a bad value', async () => {
    expect(() => loadConfig({ env: { CORRAL_PORT: '70000' } })).toThrow(/config key "port"/);
    expect(() => loadConfig({ env: { CORRAL_AUTH__LOGIN_MAX_FAILURES: 'many' } })).toThrow(/config key "auth.loginMaxFailures"/);
    const file = await configFile('bad.yaml', 'logLevel: loud\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/config key "logLevel"/);
  });

  it('says when the file cannot be read or parsed', async () => {
    expect(() => loadConfig({ file: path.join(dir, 'missing.yaml'), env: {} })).toThrow(/cannot read config file/);
    const file = await configFile('broken.yaml', 'port: [1, 2\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/not valid YAML/);
  });
});

describe('corral serve refuses to start', () => {
  it('with an unknown key in the config file, naming it, exit 1', async () => {
    const file = await configFile('serve-unknown.yaml', 'prot: 8080\n');
    const r = await runCli(['serve', '--config', file, '--data', path.join(dir, 'd1'), '--port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('config_invalid: unknown config key "prot"');
  });

  it('with a bad value in the environment, naming the key', async () => {
    const r = await runCli(['serve', '--data', path.join(dir, 'd2'), '--port', '0'], { env: { CORRAL_BODY_LIMIT_BYTES: '10' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^config_invalid: config key "bodyLimitBytes"/m);
  });

  it('when the data directory cannot be written', async () => {
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    await expect(startTestServer({ data: path.join(file, 'data') })).rejects.toThrow(/data directory .* is not writable/);
  });

  it('when the database schema is newer than the code', async () => {
    const data = path.join(dir, 'newer');
    await mkdir(data);
    const first = await startTestServer({ data });
    await first.stop({ keepData: true });
    const db = new Database(path.join(data, 'corral.db'));
    db.prepare('insert into kysely_migration (name, timestamp) values (?, ?)').run('999_from_the_future', new Date().toISOString());
    db.close();
    await expect(startTestServer({ data })).rejects.toThrow(/schema is newer than this corral \(unknown migrations: 999_from_the_future\)/);
  });
});

describe('corral config', () => {
  it('prints the effective config with secrets masked', async () => {
    const r = await runCli(['config', '--port', '9123'], { env: { CORRAL_ADMIN_PASSWORD: 'very-secret-admin-pw' } });
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(printed).toMatchObject({ port: 9123, adminPassword: '********' });
    expect(r.stdout).not.toContain('very-secret-admin-pw');
  });
});
