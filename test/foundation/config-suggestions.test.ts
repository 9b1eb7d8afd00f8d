/** An unknown config key is refused with the nearest real key (src/core/nearest-key.ts), from a file, the environment or the CLI. */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { nearestKey } from '../../src/core/nearest-key.js';
import { runCli } from '../cli/run-cli.js';
import { tempDir } from '../helpers/server.js';

describe('did you mean', () => {
  it.each([
    ['jobs.timeout', 'jobs.timeoutSeconds'], // a shorter spelling of a sibling
    ['jobs.maxTimeoutSecond', 'jobs.maxTimeoutSeconds'], // a typo
    ['jbos', 'jobs'],
    ['prot', 'port'],
    ['listenPort', 'port'], // a word of it
    ['auth.sessionTtl', 'auth.sessionTtlSeconds'],
    ['proxy.port', 'port'], // the right name under the wrong parent
  ])('%s → %s', (typed, near) => {
    const parts = typed.split('.');
    const flags: Record<string, unknown> = {};
    parts.reduce<Record<string, unknown>>((node, p, i) => (node[p] = i === parts.length - 1 ? 1 : {}) as Record<string, unknown>, flags);
    expect(() => loadConfig({ env: {}, flags })).toThrow(`unknown config key "${typed}" (did you mean "${near}"?)`);
  });

  it('suggests nothing when nothing is near', () => {
    expect(() => loadConfig({ env: {}, flags: { zzzz: 1 } })).toThrow(/unknown config key "zzzz"$/);
    expect(nearestKey('colour', ['port', 'host', 'data'])).toBeUndefined();
  });

  it('from a config file, through corral serve', async () => {
    const dir = await tempDir('corral-config-near-');
    try {
      const file = path.join(dir, 'corral.yaml');
      await writeFile(file, 'jobs:\n  timeout: 30\n');
      const r = await runCli(['serve', '--config', file, '--data', path.join(dir, 'data')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('config_invalid: unknown config key "jobs.timeout" (did you mean "jobs.timeoutSeconds"?)\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
