/**
 * The sandboxes' /etc: a copy of the allowed entries only, following /etc when it changes,
 * and (under bwrap) what a sandbox really sees.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSandbox } from '../../src/drivers/process/detect.js';
import { EtcView } from '../../src/drivers/process/etc-view.js';
import { sandboxArgv } from '../../src/drivers/process/sandbox.js';
import { tempDir } from '../helpers/server.js';
import { sandboxSpec } from './harness.js';

const sandbox = await detectSandbox();

describe('etcView', () => {
  let dir: string;
  let etc: string;
  let root: string;
  beforeAll(async () => {
    dir = await tempDir('corral-etc-view-');
    etc = path.join(dir, 'etc');
    root = path.join(dir, 'views');
    mkdirSync(path.join(etc, 'ssl/certs'), { recursive: true });
    mkdirSync(path.join(etc, 'ssl/private'), { recursive: true });
    mkdirSync(path.join(dir, 'run'));
    writeFileSync(path.join(etc, 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
    writeFileSync(path.join(etc, 'shadow'), 'root:$6$secret:19000::::::\n');
    writeFileSync(path.join(etc, 'ssl/private/key.pem'), 'PRIVATE');
    symlinkSync('/usr/share/ca-certificates/x.crt', path.join(etc, 'ssl/certs/x.pem'));
    writeFileSync(path.join(dir, 'run/resolv.conf'), 'nameserver 127.0.0.53\n');
    symlinkSync(path.join(dir, 'run/resolv.conf'), path.join(etc, 'resolv.conf'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('copies only the allowed entries: top-level links followed, links inside dirs kept', async () => {
    const v = new EtcView(root, undefined, etc);
    expect(v.current()).toBeUndefined(); // still being made: sandboxes bind /etc entries meanwhile
    const view = (await v.ready())!;
    expect(readFileSync(path.join(view, 'passwd'), 'utf8')).toMatch(/^root:/);
    expect(existsSync(path.join(view, 'shadow'))).toBe(false);
    expect(existsSync(path.join(view, 'ssl/private'))).toBe(false);
    expect(lstatSync(path.join(view, 'resolv.conf')).isFile()).toBe(true);
    expect(readFileSync(path.join(view, 'resolv.conf'), 'utf8')).toBe('nameserver 127.0.0.53\n');
    expect(readlinkSync(path.join(view, 'ssl/certs/x.pem'))).toBe('/usr/share/ca-certificates/x.crt');
  });

  it('keeps one copy while /etc is unchanged and makes a new one when it changes', async () => {
    const v = new EtcView(root, undefined, etc, 0);
    const first = await v.ready();
    expect(await v.ready()).toBe(first);
    writeFileSync(path.join(etc, 'passwd'), 'root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n');
    const second = (await v.ready())!;
    expect(second).not.toBe(first);
    expect(readFileSync(path.join(second, 'passwd'), 'utf8')).toContain('alice');
    // The old copy stays: a running sandbox may have it bound as its /etc.
    expect(existsSync(path.join(first!, 'passwd'))).toBe(true);
  });

  it('reports a failed copy and leaves sandboxes on the entry-by-entry binds', async () => {
    const errors: unknown[] = [];
    const v = new EtcView(path.join(etc, 'passwd', 'not-a-dir'), (e) => errors.push(e), etc);
    expect(await v.ready()).toBeUndefined();
    expect(errors).toHaveLength(1);
  });

  it.skipIf(!sandbox.available)('is what a sandbox sees as /etc', async () => {
    const view = await new EtcView(path.join(dir, 'real-views')).ready();
    const argv = sandboxArgv(
      sandboxSpec(sandbox.path!, {
        command: ['sh', '-c', 'head -c 5 /etc/passwd; echo; cat /etc/shadow 2>/dev/null || echo no-shadow; ls /etc/ssl/private 2>/dev/null || echo no-private'],
        etc: view,
      }),
    );
    expect(argv.filter((a) => a === '--ro-bind' || a === '--bind').length).toBeLessThan(8);
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toBe('root:\nno-shadow\nno-private\n');
  });
});
