/**
 * PostgreSQL for tests: a fresh database per call in the cluster the globalSetup started
 * (postgres-global-setup.ts), and the list of dialects the store suite runs against.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { Store } from '../../src/store/index.js';
import { tempDir } from './server.js';

/** A new, empty database; returns its URL. Throws when the test cluster is missing. */
export async function createTestDatabase(prefix = 'corral'): Promise<string> {
  const admin = inject('postgresAdminUrl');
  if (!admin) throw new Error(inject('postgresMissing'));
  const name = `${prefix}_${randomBytes(6).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

export interface StoreDialect {
  name: 'sqlite' | 'postgres';
  /** Where a fresh database lives: a data directory, plus a database URL for PostgreSQL. */
  location(): Promise<{ dataDir: string; databaseUrl?: string }>;
  /** A fresh, migrated store (its own SQLite file or PostgreSQL database). */
  open(): Promise<Store>;
}

const dialect = (name: StoreDialect['name'], location: StoreDialect['location']): StoreDialect => ({
  name,
  location,
  open: async () => {
    const l = await location();
    return Store.open(l.dataDir, l.databaseUrl);
  },
});

/** Both databases the store runs on: the store suite repeats every test on each. */
export const storeDialects: StoreDialect[] = [
  dialect('sqlite', async () => ({ dataDir: await tempDir('corral-store-') })),
  dialect('postgres', async () => ({ dataDir: await tempDir('corral-store-'), databaseUrl: await createTestDatabase('store') })),
];
