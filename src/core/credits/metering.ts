/** Whether an instance or job is metered, and at what rate: its own setting, else the config's. */
import type { InstanceSpec } from '../instances/spec.js';
import type { CreditsConfig } from './config.js';

export interface Rate {
  metered: boolean;
  creditsPerSecond: number;
}

export function instanceRate(spec: Pick<InstanceSpec, 'metered' | 'creditsPerSecond'>, config: CreditsConfig): Rate {
  const creditsPerSecond = spec.creditsPerSecond ?? config.instances.creditsPerSecond;
  // A free rate is not metered: it must not be stopped at zero for costing nothing.
  return { metered: (spec.metered ?? config.instances.metered) && creditsPerSecond > 0, creditsPerSecond };
}

export function jobRate(config: CreditsConfig): Rate {
  return { metered: config.jobs.metered && config.jobs.creditsPerSecond > 0, creditsPerSecond: config.jobs.creditsPerSecond };
}

/** Whole credits for `seconds` at `rate`, carrying the fraction to the next charge. */
export function priceSeconds(seconds: number, rate: number, carry: number): { amount: number; carry: number } {
  const exact = seconds * rate + carry;
  const amount = Math.floor(exact + 1e-9);
  return { amount, carry: Math.max(0, exact - amount) };
}

/** A job pays for every started second. */
export function jobSeconds(wallMs: number): number {
  return Math.max(1, Math.ceil(wallMs / 1000 - 1e-9));
}
