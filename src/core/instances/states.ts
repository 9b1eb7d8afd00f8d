/**
 * The observed-state machine of an instance. Every change goes through `transition`, which
 * refuses a move the table does not list, so a bug shows up as an error, not a stuck state.
 *
 *   pending → (downloading → unpacking →) starting → running → backoff → starting …
 *                                                          ↘ exited | failed
 *   any → stopped (desired state stopped);  exited | failed | stopped → pending (start);
 *   running → pending (restart)
 */
import type { InstanceState } from './spec.js';

const ALLOWED: Record<InstanceState, readonly InstanceState[]> = {
  pending: ['downloading', 'unpacking', 'starting', 'backoff', 'failed', 'stopped'],
  downloading: ['unpacking', 'failed', 'stopped'],
  unpacking: ['starting', 'failed', 'stopped'],
  starting: ['running', 'backoff', 'failed', 'exited', 'stopped'],
  running: ['backoff', 'exited', 'failed', 'stopped', 'pending'],
  backoff: ['pending', 'starting', 'stopped', 'failed'],
  exited: ['pending', 'stopped'],
  failed: ['pending', 'stopped'],
  stopped: ['pending', 'stopped'],
};

/** States in which a workload may be alive (or about to be). */
export const ACTIVE_STATES: ReadonlySet<InstanceState> = new Set(['pending', 'downloading', 'unpacking', 'starting', 'running', 'backoff']);

/** States an instance reaches on its own and stays in until someone starts it again. */
export const FINAL_STATES: ReadonlySet<InstanceState> = new Set(['exited', 'failed', 'stopped']);

export function canTransition(from: InstanceState, to: InstanceState): boolean {
  return from === to || ALLOWED[from].includes(to);
}

export function assertTransition(from: InstanceState, to: InstanceState): void {
  if (!canTransition(from, to)) throw new Error(`instance state cannot go from ${from} to ${to}`);
}
