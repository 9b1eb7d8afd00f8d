/**
 * The keeper's memory with N workloads (docs/instances.md, "Outliving the manager"): one keeper
 * (compiled, dist/), N idle children with their 3 FIFOs each, PSS and RSS from
 * /proc/<keeper>/smaps_rollup, at N = 0, 100, 500. Run: npm run build && npx tsx bench/keeper-memory.ts
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { childEnv } from '../src/core/child-env.js';

// The compiled client, so that it starts the compiled keeper (not keeper.ts under tsx).
const dist = new URL('../dist/drivers/process/keeper-client.js', import.meta.url).href;
const { KeeperClient } = (await import(dist)) as typeof import('../src/drivers/process/keeper-client.js');

function rollup(pid: number): { rss: number; pss: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rss: kb('Rss'), pss: kb('Pss') };
}

const dir = mkdtempSync(path.join(tmpdir(), 'corral-keeper-mem-'));
const keeper = new KeeperClient(path.join(dir, 'keeper'));
const { pid } = await keeper.identity();
const counts = [0, 100, 500];
let started = 0;
const children = [];
for (const n of counts) {
  for (; started < n; started++) {
    const key = `w${started}`;
    children.push(
      await keeper.spawn(['sleep', '600'], { pipes: 3, detached: true, env: childEnv(), key, spool: path.join(dir, 'keeper', 'run', key, 'spool'), stop: { signal: 'SIGTERM', graceMs: 1000, sandboxed: false } }),
    );
  }
  await new Promise((r) => setTimeout(r, 1000));
  const { rss, pss } = rollup(pid);
  console.log(`N=${n}: keeper RSS ${(rss / 1024).toFixed(1)} MB, PSS ${(pss / 1024).toFixed(1)} MB`);
}
// While no manager holds the pipes the keeper reads them itself (the spool): measured too.
keeper.close();
await new Promise((r) => setTimeout(r, 1000));
const { rss, pss } = rollup(pid);
console.log(`N=${started}, no manager connected: keeper RSS ${(rss / 1024).toFixed(1)} MB, PSS ${(pss / 1024).toFixed(1)} MB`);
process.kill(pid, 'SIGTERM');
await new Promise((r) => setTimeout(r, 3000));
rmSync(dir, { recursive: true, force: true });
