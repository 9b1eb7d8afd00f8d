/**
 * Release sources: each release's uploaded archive, kept under the app's dir so a rollback
 * (or a restart, or a new copy) can start from it again, pruned to the newest
 * `apps.keepReleases`. Also reads an archive's Procfile before a release is made of it, so
 * a bad archive is refused before anything changes.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { errors } from '../errors.js';
import { prepareSource, type ProcfileEntry, type SourcesConfig } from '../sources/index.js';

export class ReleaseArchives {
  constructor(private readonly dataRoot: string) {}

  private dir(appId: string): string {
    return path.join(this.dataRoot, 'apps', appId, 'releases');
  }

  /** Moves an uploaded archive in as release `version`'s source; returns its file name. */
  async keep(appId: string, version: number, file: string): Promise<string> {
    const dir = this.dir(appId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const name = `v${version}.archive`;
    await rename(file, path.join(dir, name));
    return name;
  }

  /** Copies a kept source for a new release (a rollback or a config change). */
  async copy(appId: string, from: string, version: number): Promise<string> {
    const tmp = await this.linkOut(appId, from);
    return this.keep(appId, version, tmp);
  }

  /** A new hard link (or copy) of a kept source in the data dir's tmp, for the instance service to take. */
  async linkOut(appId: string, name: string): Promise<string> {
    const tmpDir = path.join(this.dataRoot, 'tmp');
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    const to = path.join(tmpDir, `release-${randomUUID()}`);
    const from = path.join(this.dir(appId), name);
    await link(from, to).catch(() => copyFile(from, to));
    return to;
  }

  async drop(appId: string, name: string): Promise<void> {
    await rm(path.join(this.dir(appId), name), { force: true });
  }

  async dropAll(appId: string): Promise<void> {
    await rm(path.join(this.dataRoot, 'apps', appId), { recursive: true, force: true });
  }

  /** The archive's Procfile entries; bad archives and missing Procfiles throw their usual errors. */
  async procfileOf(file: string, config: SourcesConfig): Promise<ProcfileEntry[]> {
    const into = path.join(this.dataRoot, 'tmp', `inspect-${randomUUID()}`);
    try {
      const prepared = await prepareSource({ archive: createReadStream(file), into, config });
      if (!prepared.procfile) throw errors.noProcfile('the source has no Procfile at its top level (nor in its single top-level directory)');
      return prepared.procfile;
    } finally {
      await rm(into, { recursive: true, force: true });
    }
  }
}
