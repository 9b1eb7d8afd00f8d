/**
 * Every migration, in order. Names sort by their numeric prefix; each area of corral takes
 * its own range (001–099 accounts, 100– instances, 200– jobs, 300– ledger) so parallel work
 * does not collide (400– proxy, 500– cluster, 700– apps). A migration is never edited once released:
 * add a new one.
 *
 * Every migration runs on SQLite and on PostgreSQL (the store suite runs on both), so:
 * - build schema with `db.schema` (Kysely), not raw SQL;
 * - column types: 'text', 'integer' (32-bit in PostgreSQL), 'bigint' (times in ms, credits,
 *   byte counts), and `columnTypes(db).bytes` / `.double` from ../dialect.js for bytes and
 *   floats ('blob' and 'real' do not exist or lose precision in PostgreSQL);
 * - booleans are 'integer' 0/1; JSON is 'text'; no AUTOINCREMENT: ids are uuids made in code;
 * - `alterTable` may add or drop one column per statement (SQLite cannot do more); to change
 *   a column, add a new one and copy;
 * - data changes use the query builder, not dialect-specific SQL; if a migration truly needs
 *   different SQL, branch on `dialectOf(db)` from ../dialect.js, in that migration only.
 */
import type { Migration } from 'kysely';
import * as accounts from './001_accounts.js';
import * as instances from './100_instances.js';
import * as proxy from './400_proxy.js';
import * as jobs from './200_jobs.js';
import * as smartmob from './600_smartmob.js';
import * as ledger from './300_ledger.js';
import * as cluster from './500_cluster.js';
import * as apps from './700_apps.js';
import * as loginThrottle from './820_login_throttle.js';
import * as relayClaims from './840_relay_claims.js';
import * as writeProbe from './850_write_probe.js';
import * as hostSessions from './800_host_sessions.js';
import * as externalIdentities from './960_external_identities.js';
import * as groups from './961_groups.js';
import * as passkeys from './955_passkeys.js';
import * as groupQuotas from './962_group_quotas.js';
import * as jobSteps from './900_job_steps.js';
import * as instanceStates from './980_instance_states.js';
import * as instanceMemoryLimit from './985_instance_memory_limit.js';
import * as ceremonies from './970_ceremonies.js';

export const migrations: Record<string, Migration> = {
  '001_accounts': accounts,
  '100_instances': instances,
  '400_proxy': proxy,
  '200_jobs': jobs,
  '600_smartmob': smartmob,
  '300_ledger': ledger,
  '500_cluster': cluster,
  '700_apps': apps,
  '820_login_throttle': loginThrottle,
  '840_relay_claims': relayClaims,
  '850_write_probe': writeProbe,
  '800_host_sessions': hostSessions,
  '960_external_identities': externalIdentities,
  '961_groups': groups,
  '955_passkeys': passkeys,
  '962_group_quotas': groupQuotas,
  '900_job_steps': jobSteps,
  '980_instance_states': instanceStates,
  '985_instance_memory_limit': instanceMemoryLimit,
  '970_ceremonies': ceremonies,
};
