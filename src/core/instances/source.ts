/**
 * The source step of a Procfile app, over src/core/sources: fetch the archive (or take the
 * uploaded one, kept in the instance dir), unpack it into the instance's source dir, read the
 * Procfile and pick the spec's process type. Restarts reuse what this server unpacked; after
 * a server restart the source is unpacked afresh (apps keep state in their data dir). The
 * work runs under `inFlight`, keyed by instance id, so a delete or a server stop cancels it.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import { prepareSource } from '../sources/index.js';
import { InFlight } from '../sources/in-flight.js';
import type { PrepareSource, RunnableSource } from './supervisor.js';

/** Where the service leaves an uploaded archive, inside the instance's root dir. */
export const UPLOAD_FILE = 'upload.archive';

export function sourcePreparer(config: Config, inFlight = new InFlight()): PrepareSource {
  const prepared = new Map<string, RunnableSource>();
  return async (record, dirs, onState) => {
    const key = `${record.id}:${JSON.stringify(record.spec.source)}:${record.spec.process}`;
    const known = prepared.get(key);
    if (known) return known;
    const source = record.spec.source!;
    await rm(dirs.source, { recursive: true, force: true });
    let states = Promise.resolve();
    const preparing = inFlight.run(record.id, (signal) =>
      prepareSource({
        ...('url' in source ? { url: source.url } : { archive: createReadStream(path.join(dirs.root, UPLOAD_FILE)) }),
        into: dirs.source,
        config: config.sources,
        processType: record.spec.process ?? 'web',
        onState: (state) => {
          states = states.then(() => onState(state));
        },
        signal,
      }),
    );
    const result = await preparing.catch(async (e: unknown) => {
      await states.catch(() => undefined);
      throw e;
    });
    await states;
    const entry = result.process!;
    const runnable: RunnableSource = {
      command: ['sh', '-c', entry.command],
      env: entry.env,
      cwd: path.posix.join(config.instances.sourceMount, path.relative(result.dir, result.appDir)),
    };
    for (const k of prepared.keys()) if (k.startsWith(`${record.id}:`)) prepared.delete(k);
    prepared.set(key, runnable);
    return runnable;
  };
}
