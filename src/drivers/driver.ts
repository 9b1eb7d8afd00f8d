/**
 * The narrow seam between corral's core and whatever runs workloads (in the spirit of
 * JupyterHub's Spawner and Nomad's task drivers). Drivers only do what they are told: the
 * supervisor in core decides when to start, stop and restart. Handles are plain JSON so the
 * store can keep them and a restarted server can re-adopt what still runs.
 *
 * Drivers never import the store or anything HTTP.
 */

/** Resource limits; an absent field means "no limit beyond the server's defaults". */
export interface Limits {
  memoryBytes?: number;
  /** CPU share in cores, e.g. 0.5 = half a core. */
  cpus?: number;
  pids?: number;
  /** Size cap of the workload's private data dir. */
  diskBytes?: number;
}

export interface Mount {
  /** Path on the host (or volume name on container drivers). */
  source: string;
  /** Path inside the workload. */
  target: string;
  readOnly: boolean;
}

/** What to run: one long-lived workload (an instance's current generation). */
export interface WorkloadSpec {
  /** Stable id of the instance; drivers label or name resources with it. */
  instanceId: string;
  owner: string;
  /** Bumped on every start, so a re-adopted workload can be told from a stale one. */
  generation: number;
  /** argv; argv[0] is looked up on PATH inside the workload. */
  command: string[];
  env: Record<string, string>;
  /** Working directory inside the workload. */
  cwd: string;
  /** Host directory private to this instance, writable, kept across restarts. */
  dataDir: string;
  /** Where dataDir appears inside the workload. */
  dataMount: string;
  mounts: Mount[];
  /** Ports the workload listens on, each with the host port that reaches it. */
  ports: { name: string; containerPort: number; hostPort: number }[];
  limits: Limits;
  /** Container image (docker, swarm) or runtime name (process); undefined = host system. */
  image?: string;
  network: boolean;
  /** Which driver runs it when a server has several (see src/core/drivers); undefined = the default. */
  driver?: string;
  /**
   * How it is stopped, for drivers that may have to stop it without the server (the process
   * driver's keeper, when it is told to stop); the server passes the same to stop().
   */
  stop?: { signal: string; graceMs: number };
}

export type OutputStream = 'stdout' | 'stderr';

export interface ExitStatus {
  code: number | null;
  signal: string | null;
  /** The memory limit killed it. */
  oomKilled: boolean;
}

/** What a driver reports as a workload runs. Called in order; `exit` exactly once. */
export interface WorkloadSink {
  output(stream: OutputStream, chunk: Buffer): void;
  exit(status: ExitStatus): void;
}

/** Plain JSON that identifies a running workload to its driver. */
export type Handle = { driver: string } & Record<string, string | number | boolean | null>;

export interface WorkloadStats {
  memoryBytes?: number;
  cpuSeconds?: number;
  pids?: number;
}

export interface Workload {
  readonly handle: Handle;
  /** Writes to the workload's stdin. */
  write(data: Buffer | string): void;
  /** Sends `signal`, waits up to `graceMs`, then kills everything the workload started. */
  stop(signal: string, graceMs: number): Promise<void>;
  /** Sends a signal without waiting. */
  signal(signal: string): void;
  stats(): Promise<WorkloadStats>;
  /**
   * Stops watching without stopping it, for drivers whose workloads outlive the server
   * (containers): the next server re-adopts it. Absent = the workload dies with the server.
   */
  detach?(): void;
}

/** What a driver isolates on this machine, for `corral doctor` and the docs. */
export interface Isolation {
  filesystem: boolean;
  processes: boolean;
  network: boolean;
  memory: boolean;
  cpu: boolean;
  pids: boolean;
  notes: string[];
}

export interface Driver {
  readonly name: string;
  isolation(): Promise<Isolation>;
  start(spec: WorkloadSpec, sink: WorkloadSink): Promise<Workload>;
  /**
   * Re-attaches to a workload started by an earlier server process. Returns undefined when
   * it no longer runs. A workload that ended meanwhile may be returned too: it reports its
   * real exit to `sink` right after (the process driver's keeper recorded it).
   */
  adopt(handle: Handle, sink: WorkloadSink): Promise<Workload | undefined>;
  /**
   * Checks, before a spec is stored, that it can run here (driver enabled, image allowed and
   * present); throws a CorralError saying why not. Absent = anything goes.
   */
  admit?(req: { driver?: string; image?: string; ports?: number }): Promise<void>;
  /** Handles of every workload this driver runs for corral, for orphan clean-up. */
  list(): Promise<Handle[]>;
  /**
   * Several managers (PostgreSQL): this manager's workloads may run until `until` (ms since
   * the epoch: its leases' expiry plus the fence interval) without another word from it; the
   * process driver's keeper stops them past it. Called again at every lease renewal. Absent:
   * the driver's workloads need no fence.
   */
  fence?(until: number): void;
  /**
   * True when adopt() could not take this handle's workload back because it runs out of this
   * server's reach (another host's keeper) and may keep running there until its fence: a
   * second copy must wait for that. Absent: never.
   */
  elsewhere?(handle: Handle): boolean;
  close(): Promise<void>;
}
