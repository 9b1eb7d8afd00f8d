/**
 * vitest globalSetup: one throwaway PostgreSQL cluster for the whole run (Debian's
 * postgresql, which refuses to run as root: the cluster belongs to the `postgres` user).
 * It listens on 127.0.0.1 at a free port and on a unix socket in its temp dir, trusts local
 * connections, skips fsync, and is removed at the end. Test files make their own database
 * in it (test/helpers/postgres.ts). Started only when a selected test file is under
 * test/store/ or test/cluster/. Without the binaries, those tests fail and say why.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';
const NEEDS_POSTGRES = /test\/(store|cluster)\//;

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test cluster's `postgres` database, or '' when there is none. */
    postgresAdminUrl: string;
    postgresMissing: string;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary as the `postgres` user when we are root (as it demands). */
function asPostgres(bin: string, args: string[]) {
  const root = userInfo().uid === 0;
  return root ? run('runuser', ['-u', 'postgres', '--', path.join(BIN, bin), ...args]) : run(path.join(BIN, bin), args);
}

export default async function setup(project: TestProject) {
  project.provide('postgresAdminUrl', '');
  project.provide('postgresMissing', 'no PostgreSQL test selected');
  const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern;
  const { testFiles } = await project.globTestFiles(filters);
  if (!testFiles.some((f) => NEEDS_POSTGRES.test(f))) return;
  if (!existsSync(path.join(BIN, 'postgres'))) {
    project.provide('postgresMissing', `PostgreSQL is not installed (${BIN}); apt-get install postgresql`);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'corral-pg-'));
  if (userInfo().uid === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout), Number(gid));
  }
  const data = path.join(dir, 'data');
  const port = await freePort();
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--locale=C.UTF-8', '-E', 'UTF8', '--no-sync']);
  await asPostgres('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o', `-k ${dir} -h 127.0.0.1 -p ${port} -F -c max_connections=200`, 'start']);
  project.provide('postgresAdminUrl', `postgres://postgres@127.0.0.1:${port}/postgres`);
  project.provide('postgresMissing', '');
  return async () => {
    await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
}
