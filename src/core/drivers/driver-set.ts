/**
 * Several drivers behind the one Driver the supervisor talks to: each workload goes to the
 * driver its spec names (or the default), each handle back to the driver that made it.
 */
import { errors } from '../errors.js';
import type { Driver, Handle, Isolation, Workload, WorkloadSink, WorkloadSpec } from '../../drivers/driver.js';

/** What a spec asks of a driver, checked before it is stored. */
export interface DriverRequest {
  driver?: string;
  image?: string;
  /** How many ports it has (the process driver needs pasta for them). */
  ports?: number;
}

/** A driver's admission check: allow-lists, images present. Throws a CorralError. */
export type Admit = (req: DriverRequest) => Promise<void>;

export class DriverSet implements Driver {
  readonly name: string;

  constructor(
    private readonly byName: Map<string, Driver>,
    readonly defaultName: string,
    /** Why an enabled driver is not here (its engine did not answer), by name. */
    private readonly missing: Map<string, string>,
    private readonly admits: Map<string, Admit>,
  ) {
    this.name = defaultName;
  }

  /** The driver called `name` (default: the default one), or a clear error. */
  get(name: string = this.defaultName): Driver {
    const d = this.byName.get(name);
    if (d) return d;
    const why = this.missing.get(name);
    if (why) throw errors.driverUnavailable(`the ${name} driver is unavailable: ${why}`);
    throw errors.validation(`driver: "${name}" is not enabled on this server; enabled: ${[...this.byName.keys(), ...this.missing.keys()].join(', ')}`);
  }

  /** Refuses a spec its driver cannot run (unknown driver, no sandbox, image not allowed or missing). */
  async admit(req: DriverRequest): Promise<void> {
    const name = req.driver ?? this.defaultName;
    // The driver's own refusal first (the process driver without a sandbox).
    await this.get(name).admit?.(req);
    const admit = this.admits.get(name);
    if (admit) await admit(req);
    else if (req.image !== undefined) throw errors.validation(`image: the ${name} driver runs no images; choose a container driver ("driver": "docker")`);
  }

  isolation(): Promise<Isolation> {
    return this.get().isolation();
  }

  start(spec: WorkloadSpec, sink: WorkloadSink): Promise<Workload> {
    return this.get(spec.driver).start(spec, sink);
  }

  async adopt(handle: Handle, sink: WorkloadSink): Promise<Workload | undefined> {
    // A handle of a driver that is gone now cannot be adopted: the supervisor starts it anew.
    return this.byName.get(handle.driver)?.adopt(handle, sink);
  }

  fence(until: number): void {
    for (const d of this.byName.values()) d.fence?.(until);
  }

  elsewhere(handle: Handle): boolean {
    return this.byName.get(handle.driver)?.elsewhere?.(handle) ?? false;
  }

  async list(): Promise<Handle[]> {
    const lists = await Promise.all([...this.byName.values()].map((d) => d.list().catch(() => [])));
    return lists.flat();
  }

  async close(): Promise<void> {
    await Promise.all([...this.byName.values()].map((d) => d.close()));
  }
}
