/**
 * Every migration, in order. Names sort by their numeric prefix; each area of corral takes
 * its own range (001–099 accounts, 100– instances, 200– jobs, 300– ledger) so parallel work
 * does not collide. A migration is never edited once released: add a new one.
 */
import type { Migration } from 'kysely';
import * as accounts from './001_accounts.js';
import * as instances from './100_instances.js';
import * as proxy from './400_proxy.js';
import * as jobs from './200_jobs.js';

export const migrations: Record<string, Migration> = {
  '001_accounts': accounts,
  '100_instances': instances,
  '400_proxy': proxy,
  '200_jobs': jobs,
};
