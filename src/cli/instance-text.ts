/** An instance as people read it (`corral instance show`, `create`): one labelled line per fact, no JSON. */
import type { Instance } from '../core/instances/spec.js';
import { labelled } from './output.js';
import { formatDuration, formatSize } from './units.js';

/** An argv as a shell would take it back: `python3 -m http.server '8000'`. */
export function shellWords(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function what(i: Instance): string {
  const s = i.spec;
  if (s.command) return shellWords(s.command);
  if (s.shell) return `sh -c ${shellWords([s.shell])}`;
  const from = s.source && 'url' in s.source ? s.source.url : 'an uploaded archive';
  return `Procfile process "${s.process ?? 'web'}" from ${from}`;
}

function limits(i: Instance): string {
  const l = i.spec.limits ?? {};
  const parts = [
    l.memoryBytes !== undefined && `memory ${formatSize(l.memoryBytes)}`,
    l.cpus !== undefined && `cpus ${l.cpus}`,
    l.pids !== undefined && `pids ${l.pids}`,
    l.diskBytes !== undefined && `disk ${formatSize(l.diskBytes)}`,
  ].filter(Boolean);
  return parts.join(', ') || "the server's defaults";
}

function state(i: Instance): string {
  const since = i.state === 'running' && i.startedAt ? ` since ${i.startedAt}` : '';
  const wanted = i.desiredState === 'running' && i.state === 'running' ? '' : ` (wanted: ${i.desiredState})`;
  return `${i.state}${since}${wanted}`;
}

export function describeInstance(i: Instance): string {
  const rows: [string, string][] = [
    ['state', state(i)],
    ['runs', what(i)],
    ['ports', i.ports.map((p) => `${p.name} → 127.0.0.1:${p.hostPort}`).join(', ') || 'none'],
    ['limits', limits(i)],
    [
      'restart',
      `${i.spec.restart ?? 'always'}, ${i.restartCount} restart${i.restartCount === 1 ? '' : 's'} so far; ` +
        `stops with ${i.spec.stopSignal ?? 'SIGTERM'}, SIGKILL after ${formatDuration(i.spec.stopGraceSeconds ?? 10)}`,
    ],
  ];
  const env = Object.keys(i.spec.env ?? {});
  if (env.length) rows.push(['env', `${env.join(', ')} (values: --json)`]);
  if (i.spec.driver || i.spec.image) rows.push(['driver', [i.spec.driver, i.spec.image && `image ${i.spec.image}`].filter(Boolean).join(', ')]);
  if (i.exitCode !== null || i.exitSignal) rows.push(['last exit', i.exitSignal ? `signal ${i.exitSignal}` : `code ${i.exitCode}`]);
  if (i.lastError) rows.push(['error', i.lastError]);
  rows.push(['created', i.createdAt]);
  return `${i.owner}:${i.name}  ${i.id}\n${labelled(rows)}`;
}
