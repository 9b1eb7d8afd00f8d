/**
 * Cluster: what lets several corral processes share work. A manager's leases on instances
 * (several managers on one PostgreSQL database) and its stable id.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { isPostgresUrl } from '../../store/dialect.js';
import type { Store } from '../../store/index.js';
import type { Config } from '../config.js';
import { SharedLeases, soleLeases, type InstanceLeases } from './leases.js';

/**
 * This manager's id: kept in the data directory, so a manager that restarts quickly finds
 * its own leases still valid and re-adopts its workloads instead of waiting for them to expire.
 */
export async function managerId(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'manager-id');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const id = `${hostname()}-${randomBytes(4).toString('hex')}`;
  await writeFile(file, `${id}\n`, { mode: 0o600, flag: 'wx' }).catch(async () => undefined);
  return (await readFile(file, 'utf8')).trim();
}

/** Leases are only needed when managers can share the database: PostgreSQL. */
export async function openLeases(config: Config, store: Store, log: Logger): Promise<InstanceLeases> {
  if (!isPostgresUrl(config.databaseUrl)) return soleLeases;
  return new SharedLeases(store.leases, {
    managerId: await managerId(config.data),
    ttlMs: config.cluster.leaseSeconds * 1000,
    warn: (err, message) => log.warn({ err }, message),
  });
}

export { soleLeases, type InstanceLeases, type ClaimResult, type Holder } from './leases.js';
export { ROLES, type Role } from './config.js';
