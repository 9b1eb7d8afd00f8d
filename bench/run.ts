/**
 * `npm run bench`: runs every bench/*.bench.ts (or those named on the command line), prints
 * their tables and writes them to docs/benchmarks.md together with the machine they ran on.
 */
import { readdir, writeFile } from 'node:fs/promises';
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
  `${os.type()} ${os.release()}. Every table compares corral with the alternative in the same run.\n`;
if (!only.length) {
  await writeFile(
    path.join(here, '..', 'docs', 'benchmarks.md'),
    `${header}\n${sections.map((s) => `## ${s.title}\n\n${s.markdown}\n`).join('\n')}`,
  );
}
