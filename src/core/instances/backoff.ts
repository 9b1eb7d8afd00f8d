/** Restart delays: ×factor from the first delay up to a cap, reset after a stable uptime (PM2). */
import type { InstancesConfig } from './config.js';

export type BackoffConfig = InstancesConfig['restart'];

/** Delay before restart number `attempt` (0-based count of quick consecutive exits). */
export function restartDelayMs(cfg: BackoffConfig, attempt: number): number {
  return Math.min(cfg.maxDelayMs, Math.round(cfg.initialDelayMs * cfg.factor ** attempt));
}

/** Whether a run that lasted `uptimeMs` was stable enough to start the delays over. */
export function wasStable(cfg: BackoffConfig, uptimeMs: number): boolean {
  return uptimeMs >= cfg.resetAfterSeconds * 1000;
}

/** Whether a policy restarts after this exit. */
export function shouldRestart(policy: 'always' | 'on-failure' | 'never', failed: boolean): boolean {
  return policy === 'always' || (policy === 'on-failure' && failed);
}
