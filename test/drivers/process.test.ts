/**
 * The process driver: the conformance suite in each mode this machine offers, plus what only
 * the process driver promises (no orphans after the server is SIGKILLed, read-only system
 * dirs, leftover clean-up at the next start).
 */
import { describe } from 'vitest';
import { ProcessDriver } from '../../src/drivers/process/process-driver.js';
import { detectCgroups, detectSandbox } from '../../src/drivers/process/detect.js';
import { describeDriverConformance } from './conformance.js';

const sandbox = await detectSandbox();
const cg = await detectCgroups();
const cgroupsWork = cg.version !== 'none' && cg.writable;

describe('process driver', () => {
  describeDriverConformance('process (bwrap + cgroups)', async (ctx) => new ProcessDriver({ hide: [ctx.corralData], warn: () => {} }), {
    limits: { memory: cgroupsWork, pids: cgroupsWork },
    isolation: { filesystem: sandbox.available, network: sandbox.available },
    sharesHostLoopback: true,
  });

  // The fallback a machine without bubblewrap gets: same lifecycle, limits still enforced.
  describeDriverConformance('process (no sandbox)', async (ctx) => new ProcessDriver({ hide: [ctx.corralData], sandbox: false, warn: () => {} }), {
    limits: { memory: cgroupsWork, pids: cgroupsWork },
    isolation: { filesystem: false, network: false },
    sharesHostLoopback: true,
    mountsDataDir: false,
  });
});
