// My usage: balance, a chart of credits over time, live CPU and memory of my running
// instances (from the driver's cgroup or container stats), sums per instance, ledger rows.
import { api } from '../lib/api.js';
import { h, render, when } from '../lib/dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const DAY_MS = 86_400_000;
const REFRESH_MS = 2000;

const svg = (tag, attrs = {}, ...children) => {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
};

const mib = (n) => (n == null ? '–' : n >= 1073741824 ? `${(n / 1073741824).toFixed(1)} GiB` : `${(n / 1048576).toFixed(1)} MiB`);
const limitText = (n, show = String) => (n ? show(n) : 'no limit');

/** The balance after each ledger row, oldest first, as a step line with labelled axes. */
function balanceChart(records) {
  const points = [...records].reverse().map((r) => ({ t: Date.parse(r.at), v: r.balance }));
  if (points.length === 0) return h('p', { class: 'muted' }, 'No credits moved in the last 30 days.');
  const last = points[points.length - 1];
  points.push({ t: Math.max(Date.now(), last.t), v: last.v });
  const W = 640, H = 180, PAD = 36;
  const t0 = points[0].t, t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const vs = points.map((p) => p.v);
  const lo = Math.min(0, ...vs), hi = Math.max(1, ...vs);
  const x = (t) => PAD + ((t - t0) / (t1 - t0)) * (W - 2 * PAD);
  const y = (v) => H - PAD + ((lo - v) / (hi - lo)) * (H - 2 * PAD);
  const steps = points.flatMap((p, i) => (i === 0 ? [[x(p.t), y(p.v)]] : [[x(p.t), y(points[i - 1].v)], [x(p.t), y(p.v)]]));
  return svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `Credits over time: ${points[0].v} to ${last.v}`, 'data-points': points.length - 1, width: '100%' },
    svg('line', { x1: PAD, y1: y(0), x2: W - PAD, y2: y(0), stroke: '#dde1e7' }),
    svg('polyline', { points: steps.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' '), fill: 'none', stroke: '#1f5fbf', 'stroke-width': 2 }),
    svg('text', { x: 2, y: y(hi) + 4, 'font-size': 11 }, String(hi)),
    svg('text', { x: 2, y: y(lo) + 4, 'font-size': 11 }, String(lo)),
    svg('text', { x: PAD, y: H - 8, 'font-size': 11 }, new Date(t0).toLocaleString()),
    svg('text', { x: W - PAD, y: H - 8, 'font-size': 11, 'text-anchor': 'end' }, 'now'));
}

function liveRows(instances) {
  if (!instances.length) return h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No instance of yours is running.'));
  return instances.map((i) => h('tr', { 'data-instance': i.name },
    h('td', {}, h('a', { href: `#/instances/${i.id}` }, i.name)),
    h('td', {}, i.metered ? `${i.creditsPerSecond}/s` : 'not metered'),
    h('td', { class: 'cpu' }, i.cpuPercent == null ? (i.cpuSeconds == null ? '–' : `${i.cpuSeconds.toFixed(2)} s`) : `${i.cpuPercent}%`),
    h('td', { class: 'memory' }, `${mib(i.memoryBytes)} of ${mib(i.memoryLimitBytes)}`),
    h('td', {}, when(i.startedAt))));
}

export async function usagePage(main) {
  const from = new Date(Date.now() - 30 * DAY_MS).toISOString();
  const u = await api('GET', `/usage?from=${encodeURIComponent(from)}&group=instance&limit=500`);
  const q = u.quotas, use = u.quotaUse;
  const live = h('tbody');
  render(main, h('h1', {}, 'My usage'),
    h('div', { class: 'card' },
      h('p', {}, h('strong', {}, 'Credits: '), h('span', { class: 'balance' }, String(u.balance))),
      h('p', { class: 'muted' }, `Last 30 days: spent ${u.spent}, credited ${u.credited}.`),
      h('p', { class: 'muted' }, `Quotas: instances ${use.instances} of ${limitText(q.instances)} · running ${use.runningInstances} of ${limitText(q.runningInstances)} · ` +
        `memory ${mib(use.memoryBytes)} of ${limitText(q.memoryBytes, mib)} · jobs ${use.concurrentJobs} of ${limitText(q.concurrentJobs)}`)),
    h('h2', {}, 'Credits over time'),
    h('div', { class: 'card' }, balanceChart(u.records)),
    h('h2', {}, 'Running instances'),
    h('table', { class: 'live' }, h('thead', {}, h('tr', {}, ['Instance', 'Rate', 'CPU', 'Memory', 'Started'].map((t) => h('th', { scope: 'col' }, t)))), live),
    h('h2', {}, 'By instance and job'),
    u.groups.length
      ? h('table', {}, h('thead', {}, h('tr', {}, ['What', 'Kind', 'Seconds', 'Credits'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, u.groups.map((g) => h('tr', {}, h('td', {}, g.name ?? g.key), h('td', {}, g.kind ?? ''), h('td', {}, g.seconds ? g.seconds.toFixed(1) : ''), h('td', {}, String(g.credits))))))
      : h('p', { class: 'muted' }, 'Nothing used yet.'),
    h('h2', {}, 'Ledger'),
    h('table', {}, h('thead', {}, h('tr', {}, ['When', 'What', 'Seconds', 'Credits', 'Balance'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, u.records.slice(0, 100).map((r) => h('tr', {}, h('td', {}, when(r.at)), h('td', { title: r.reason }, r.what),
        h('td', {}, r.seconds == null ? '' : r.seconds.toFixed(1)), h('td', {}, String(r.credits)), h('td', {}, String(r.balance)))))));

  // CPU % needs two samples: refresh while the page is open.
  const refresh = async () => render(live, liveRows((await api('GET', '/usage/instances')).instances));
  await refresh();
  const timer = setInterval(() => void refresh().catch(() => undefined), REFRESH_MS);
  return () => clearInterval(timer);
}
