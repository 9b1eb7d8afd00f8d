import type { ColumnType } from 'kysely';
import type { JobsTable } from './jobs.js';
import type { SmartmobProcessesTable } from './smartmob.js';
import type { LedgerTable, MeterMarksTable } from './ledger.js';
import type { UserQuotasTable } from './quotas.js';
import type { AppCopiesTable, AppReleasesTable, AppsTable } from './apps.js';
import type { LoginThrottleTable } from './login-throttle.js';
import type { CeremoniesTable } from './ceremonies.js';
import type { ExternalIdentitiesTable } from './external-identities.js';
import type { GroupQuotasTable, UserGroupsTable } from './groups.js';
import type { RelayClaimsTable } from './relay-claims.js';
import type { WriteProbeTable } from './database.js';
import type { HostLoginCodesTable, HostSessionsTable } from './host-sessions.js';
import type { PasskeySessionsTable, PasskeysTable } from './passkeys.js';

/** Table types: the shape of every row the store reads and writes. Times are ms since the epoch. */
import type { DesiredState, InstanceState } from '../core/instances/spec.js';

export interface UsersTable {
  id: string;
  name: string;
  role: 'admin' | 'user';
  password_hash: string;
  credits: number;
  created_at: number;
  updated_at: number;
}

export interface TokensTable {
  id: string; // the JWT's jti
  user_id: string;
  name: string;
  scopes: string; // JSON array
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  credits: number; // given to the owner once, on first use (see store/ledger.ts)
  credits_claimed_at: number | null;
}

export interface SessionsTable {
  id_hash: string; // sha256 of the cookie value: a copy of the database yields no session
  user_id: string;
  csrf_token: string;
  created_at: number;
  expires_at: number;
}

export interface ProxyInstancesTable {
  instance_id: string;
  owner_name: string;
  instance_name: string;
  shared_with: string; // JSON array of user ids
  shared_with_groups: ColumnType<string, string | undefined, string>; // JSON array of group names; '[]' by default
  idle_timeout_seconds: number; // 0 = never culled
  start_on_demand: number; // 0 or 1
  last_activity_at: number | null;
}

export interface ProxyDefaultsTable {
  user_id: string;
  instance_id: string;
}

export interface InstancesTable {
  id: string;
  owner_id: string;
  name: string;
  spec: string; // JSON InstanceSpec
  /** spec.limits.memoryBytes when the spec sets it (quota sums read it from an index). */
  memory_limit: ColumnType<number | null, number | null | undefined, number | null>;
  desired_state: DesiredState;
  observed_state: InstanceState;
  generation: number;
  restart_count: number;
  exit_code: number | null;
  exit_signal: string | null;
  last_error: string | null;
  handle: string | null; // JSON driver handle
  ports: string; // JSON [{name, hostPort}]
  created_at: number;
  updated_at: number;
  started_at: number | null;
}

export interface InstanceLeasesTable {
  instance_id: string;
  manager_id: string;
  expires_at: number;
}

export interface Database {
  users: UsersTable;
  tokens: TokensTable;
  sessions: SessionsTable;
  proxy_instances: ProxyInstancesTable;
  proxy_defaults: ProxyDefaultsTable;
  host_login_codes: HostLoginCodesTable;
  host_sessions: HostSessionsTable;
  jobs: JobsTable;
  instances: InstancesTable;
  smartmob_processes: SmartmobProcessesTable;
  instance_leases: InstanceLeasesTable;
  ledger: LedgerTable;
  meter_marks: MeterMarksTable;
  user_quotas: UserQuotasTable;
  apps: AppsTable;
  app_releases: AppReleasesTable;
  app_copies: AppCopiesTable;
  login_throttle: LoginThrottleTable;
  ceremonies: CeremoniesTable;
  external_identities: ExternalIdentitiesTable;
  user_groups: UserGroupsTable;
  group_quotas: GroupQuotasTable;
  passkeys: PasskeysTable;
  passkey_sessions: PasskeySessionsTable;
  relay_claims: RelayClaimsTable;
  write_probe: WriteProbeTable;
}
