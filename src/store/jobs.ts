/** Job rows: queued, running and finished jobs with their results, until they expire. */
import type { Db } from './database.js';

export interface JobsTable {
  id: string;
  user_id: string;
  runtime: string;
  state: 'queued' | 'running' | 'done';
  spec: string;
  status: string | null;
  exit_code: number | null;
  signal: string | null;
  stdout: Buffer | null;
  stderr: Buffer | null;
  stdout_truncated: number;
  stderr_truncated: number;
  wall_ms: number | null;
  cpu_ms: number | null;
  memory_peak_bytes: number | null;
  output_name: string | null;
  output_mime: string | null;
  output_data: Buffer | null;
  note: string | null;
  /** JSON of the compile step and a batch's cases (core/jobs/steps.ts), or null. */
  steps: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  expires_at: number | null;
}

export type JobRow = JobsTable & { user_name: string };

/** The note of a job whose server died (was killed or crashed) before it finished. */
export const INTERRUPTED_NOTE = 'server-died: the server stopped (crashed or was killed) before the job finished';

/** A job just accepted: its identity and spec, every result column still empty. */
export function queuedJobRow(job: Pick<JobsTable, 'id' | 'user_id' | 'runtime' | 'spec' | 'created_at'>): JobsTable {
  return {
    ...job,
    state: 'queued',
    status: null,
    exit_code: null,
    signal: null,
    stdout: null,
    stderr: null,
    stdout_truncated: 0,
    stderr_truncated: 0,
    wall_ms: null,
    cpu_ms: null,
    memory_peak_bytes: null,
    output_name: null,
    output_mime: null,
    output_data: null,
    note: null,
    steps: null,
    started_at: null,
    finished_at: null,
    expires_at: null,
  };
}

/** The columns a listing shows: everything but the (large) outputs. */
const SUMMARY = [
  'jobs.id',
  'jobs.user_id',
  'jobs.runtime',
  'jobs.state',
  'jobs.spec',
  'jobs.status',
  'jobs.exit_code',
  'jobs.signal',
  'jobs.stdout_truncated',
  'jobs.stderr_truncated',
  'jobs.wall_ms',
  'jobs.cpu_ms',
  'jobs.memory_peak_bytes',
  'jobs.output_name',
  'jobs.output_mime',
  'jobs.note',
  'jobs.created_at',
  'jobs.started_at',
  'jobs.finished_at',
  'jobs.expires_at',
] as const;

export type JobSummaryRow = Omit<JobRow, 'stdout' | 'stderr' | 'output_data' | 'steps'>;

export type JobFinish = Pick<
  JobsTable,
  | 'status'
  | 'exit_code'
  | 'signal'
  | 'stdout'
  | 'stderr'
  | 'stdout_truncated'
  | 'stderr_truncated'
  | 'wall_ms'
  | 'cpu_ms'
  | 'memory_peak_bytes'
  | 'output_name'
  | 'output_mime'
  | 'output_data'
  | 'note'
  | 'steps'
  | 'started_at'
  | 'finished_at'
  | 'expires_at'
>;

export class JobStore {
  constructor(private readonly db: Db) {}

  async insert(row: JobsTable): Promise<void> {
    await this.db.insertInto('jobs').values(row).execute();
  }

  /** The job left the queue and runs since `startedAt`. */
  async markRunning(id: string, startedAt: number): Promise<void> {
    await this.db.updateTable('jobs').set({ state: 'running', started_at: startedAt }).where('id', '=', id).where('state', '=', 'queued').execute();
  }

  async finish(id: string, result: JobFinish): Promise<void> {
    await this.db.updateTable('jobs').set({ ...result, state: 'done' }).where('id', '=', id).execute();
  }

  async byId(id: string): Promise<JobRow | undefined> {
    return this.db
      .selectFrom('jobs')
      .innerJoin('users', 'users.id', 'jobs.user_id')
      .selectAll('jobs')
      .select('users.name as user_name')
      .where('jobs.id', '=', id)
      .executeTakeFirst();
  }

  /** Newest first; `userId` undefined lists everyone's (for admins). */
  async list(userId: string | undefined, limit: number): Promise<JobSummaryRow[]> {
    let q = this.db
      .selectFrom('jobs')
      .innerJoin('users', 'users.id', 'jobs.user_id')
      .select(SUMMARY)
      .select('users.name as user_name');
    if (userId) q = q.where('jobs.user_id', '=', userId);
    return q.orderBy('jobs.created_at', 'desc').limit(limit).execute();
  }

  /** Removes results whose retention ended; returns how many. */
  async deleteExpired(now: number): Promise<number> {
    const r = await this.db.deleteFrom('jobs').where('expires_at', '<=', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /** Jobs a previous server process left queued or running: they died with it (crash, SIGKILL). */
  async markInterrupted(now: number, expiresAt: number): Promise<number> {
    const r = await this.db
      .updateTable('jobs')
      .set({ state: 'done', status: 'killed', note: INTERRUPTED_NOTE, finished_at: now, expires_at: expiresAt })
      .where('state', '!=', 'done')
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }
}
