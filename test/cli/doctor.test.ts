/** `corral doctor` reports on this machine; its verdicts are checked against what is really here. */
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '../../src/core/doctor.js';
import { tempDir } from '../helpers/server.js';
import { runCli } from './run-cli.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('corral-doctor-');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('corral doctor', () => {
  it('reports every check as JSON, with what corral does without the missing ones', async () => {
    const r = await runCli(['doctor', '--json', '--data', path.join(dir, 'data')]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.ready).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual(['node', 'data dir', 'bubblewrap', 'network isolation', 'cgroups', 'docker', 'chromium', 'disk limit']);
    for (const c of report.checks) {
      expect(['ok', 'limited', 'missing']).toContain(c.status);
      expect(c.detail).not.toBe('');
      if (c.status !== 'ok') expect(c.without, c.name).toMatch(/\w/);
    }
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
    expect(byName.node!.detail).toContain(process.versions.node);
    expect(byName['data dir']!.detail).toContain('will be created');
    expect(byName.cgroups!.detail).toMatch(/^(v1|v2) at /);
    // diskBytes is measured, never a kernel quota: doctor says it is soft, and how often.
    expect(byName['disk limit']).toMatchObject({ status: 'limited', detail: expect.stringMatching(/^soft: .* every 30 s \(instances\.diskCheckSeconds\)/) });
    // Docker: ok exactly when an engine socket exists here (it must also answer).
    if (!existsSync('/var/run/docker.sock')) expect(byName.docker!.status).toBe('missing');
  });

  it('prints one line per check for people', async () => {
    const r = await runCli(['doctor', '--data', dir]);
    expect(r.code).toBe(0);
    for (const name of ['node', 'data dir', 'bubblewrap', 'network isolation', 'cgroups', 'docker', 'chromium', 'disk limit']) {
      expect(r.stdout).toMatch(new RegExp(`^(ok|limited|missing)\\s+${name}\\s`, 'm'));
    }
  });

  it('fails (exit 1) when the data directory cannot be created', async () => {
    const file = path.join(dir, 'plain-file');
    await writeFile(file, '');
    const r = await runCli(['doctor', '--json', '--data', path.join(file, 'data')]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.ready).toBe(false);
    expect(report.checks.find((c) => c.name === 'data dir')).toMatchObject({ status: 'missing' });
  });
});
