/**
 * `npm run bench`: runs every bench/*.bench.ts (or those named on the command line), prints
 * their tables and writes them to docs/benchmarks.md together with the machine they ran on
 * (a run of some benchmarks replaces only their sections).
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Benchmark, BenchSection } from './lib.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = (await readdir(here))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => !only.length || only.some((o) => f.startsWith(o)))
  .sort();

const sections: BenchSection[] = [];
for (const file of files) {
  process.stderr.write(`running ${file}…\n`);
  const mod = (await import(path.join(here, file))) as { default: Benchmark };
  // One benchmark failing must not lose the others' tables: it gets a section saying why.
  const result = await mod.default().catch((e: unknown): BenchSection[] => {
    process.exitCode = 1;
    return [{ title: file, markdown: `_Failed: ${(e as Error).message}_` }];
  });
  for (const s of result) {
    sections.push(s);
    process.stdout.write(`\n## ${s.title}\n\n${s.markdown}\n`);
  }
}

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const header =
  `# Benchmarks\n\nProduced by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ` +
  `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ` +
  `${os.type()} ${os.release()}. Every table compares corral with the alternative in the same run.` +
  (only.length ? ' Sections were re-run on their own after changes to what they measure (`npm run bench <name>`).' : '') +
  '\n';
const doc = path.join(here, '..', 'docs', 'benchmarks.md');
const section = (s: BenchSection) => `## ${s.title}\n\n${s.markdown}\n`;
if (!only.length) await writeFile(doc, `${header}\n${sections.map(section).join('\n')}`);
else {
  // A partial run replaces its own sections in place (and appends new ones); the rest stay.
  const old = await readFile(doc, 'utf8').catch(() => '');
  const kept = old.split(/^(?=## )/m).slice(1);
  const fresh = new Map(sections.map((s) => [s.title, section(s)]));
  const merged = kept.map((k) => {
    const title = k.slice(3, k.indexOf('\n'));
    const next = fresh.get(title);
    fresh.delete(title);
    return next === undefined ? k.trimEnd() + '\n' : next;
  });
  await writeFile(doc, `${header}\n${[...merged, ...fresh.values()].join('\n')}`);
}
