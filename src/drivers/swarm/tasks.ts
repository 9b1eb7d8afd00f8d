/**
 * A service's tasks as the swarm reports them (from any node): where a task runs, whether
 * it ended, and its exit as corral reports it.
 */
import type { Engine } from '../docker/engine.js';
import { exitStatus } from '../docker/container-io.js';
import type { ExitStatus } from '../driver.js';

export interface SwarmTask {
  ID: string;
  NodeID?: string;
  Status?: { State?: string; Err?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
}

/** States after which a task never runs again (swarm's restart policy is off). */
const ENDED = new Set(['complete', 'failed', 'rejected', 'shutdown', 'orphaned', 'remove']);
/** States of a task whose container the swarm has created. */
const STARTED = new Set(['running', 'complete', 'failed', 'shutdown']);

export const taskEnded = (t: SwarmTask): boolean => ENDED.has(t.Status?.State ?? '');
export const taskStarted = (t: SwarmTask): boolean => STARTED.has(t.Status?.State ?? '') && !!t.Status?.ContainerStatus?.ContainerID;

export async function serviceTasks(engine: Engine, serviceId: string): Promise<SwarmTask[]> {
  return (await engine.listTasks({ filters: JSON.stringify({ service: [serviceId] }) })) as SwarmTask[];
}

/**
 * The exit of an ended task: its container's exit code (128+n = signal n, as for docker);
 * swarm leaves out a zero code, and a task that never ran or was lost with its node has none.
 */
export function taskExit(t: SwarmTask | undefined, oomKilled: boolean): ExitStatus {
  const s = t?.Status;
  const reported = s?.ContainerStatus?.ExitCode ?? Number(/exit \((\d+)\)/.exec(s?.Err ?? '')?.[1] ?? NaN);
  const code = Number.isInteger(reported) ? reported : s?.State === 'complete' ? 0 : null;
  return exitStatus(code, oomKilled);
}
