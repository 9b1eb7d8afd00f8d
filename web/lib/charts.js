// Small inline SVG charts (no chart library): sparklines for table cells and a labelled line
// chart for the instance and server pages. Values are drawn oldest first; null leaves a gap.
const SVG = 'http://www.w3.org/2000/svg';

export const svg = (tag, attrs = {}, ...children) => {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
};

export const bytes = (n) => {
  if (n == null) return '–';
  if (n >= 1073741824) return `${(n / 1073741824).toFixed(1)} GiB`;
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
};
export const percent = (n) => (n == null ? '–' : `${n.toFixed(n < 10 ? 1 : 0)}%`);

/** Polyline `points` strings of each unbroken run of `points` ({x, y}; y null is a gap). */
function segments(points) {
  const runs = [];
  let run = [];
  for (const p of points) {
    if (p.y == null) {
      if (run.length) runs.push(run);
      run = [];
    } else run.push(p);
  }
  if (run.length) runs.push(run);
  // A lone sample is drawn as a short dash, so it shows.
  return runs.map((r) => (r.length === 1 ? [r[0], { x: r[0].x + 2, y: r[0].y }] : r).map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`));
}

/**
 * A small sparkline: `values` oldest first, scaled to `max` (or the largest value). Its
 * accessible name says the latest value (`label(v)`), for screen readers and tests.
 */
export function sparkline(values, { max, label = String, name = '', width = 120, height = 24, cls = '' } = {}) {
  const top = Math.max(max ?? 0, ...values.filter((v) => v != null), 1e-9);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const pts = values.map((v, i) => ({ x: i * step, y: v == null ? null : height - 1 - (v / top) * (height - 2) }));
  const last = [...values].reverse().find((v) => v != null);
  return svg('svg', { class: `spark ${cls}`, viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': `${name}${last == null ? 'no samples yet' : label(last)}`, 'data-samples': values.length, preserveAspectRatio: 'none' },
    ...segments(pts).map((s) => svg('polyline', { points: s.join(' '), fill: 'none', stroke: 'currentColor', 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' })));
}

/**
 * A line chart over time with a labelled y axis: `series` = [{ name, color, values: [{t, v}] }].
 * `max` fixes the top (e.g. the memory limit), else the largest value; `label` formats values.
 */
export function lineChart(series, { max, label = String, title, width = 560, height = 160, from, to } = {}) {
  const PAD_L = 64, PAD_R = 8, PAD_T = 10, PAD_B = 22;
  const all = series.flatMap((s) => s.values);
  const t0 = from ?? Math.min(...all.map((p) => p.t), Date.now() - 60_000);
  const t1 = to ?? Math.max(...all.map((p) => p.t), t0 + 1);
  const top = Math.max(max ?? 0, ...all.map((p) => p.v ?? 0), 1e-9);
  const x = (t) => PAD_L + ((t - t0) / Math.max(1, t1 - t0)) * (width - PAD_L - PAD_R);
  const y = (v) => PAD_T + (1 - v / top) * (height - PAD_T - PAD_B);
  const latest = series.map((s) => `${s.name} ${label([...s.values].reverse().find((p) => p.v != null)?.v ?? null)}`).join(', ');
  return svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', 'aria-label': `${title}: ${all.length ? latest : 'no samples yet'}`, 'data-samples': all.length },
    svg('line', { x1: PAD_L, y1: y(0), x2: width - PAD_R, y2: y(0), stroke: '#dde1e7' }),
    svg('line', { x1: PAD_L, y1: y(top), x2: width - PAD_R, y2: y(top), stroke: '#eef0f3' }),
    svg('text', { x: PAD_L - 4, y: y(top) + 4, 'font-size': 11, 'text-anchor': 'end' }, label(top)),
    svg('text', { x: PAD_L - 4, y: y(0) + 4, 'font-size': 11, 'text-anchor': 'end' }, label(0)),
    svg('text', { x: PAD_L, y: height - 6, 'font-size': 11 }, new Date(t0).toLocaleTimeString()),
    svg('text', { x: width - PAD_R, y: height - 6, 'font-size': 11, 'text-anchor': 'end' }, new Date(t1).toLocaleTimeString()),
    ...series.flatMap((s) => segments(s.values.map((p) => ({ x: x(p.t), y: p.v == null ? null : y(p.v) })))
      .map((seg) => svg('polyline', { points: seg.join(' '), fill: 'none', stroke: s.color, 'stroke-width': 1.5, class: `series-${s.name.replace(/\W+/g, '-')}` }))));
}

/** A legend for lineChart's series. */
export function legend(series) {
  const items = series.map((s) => {
    const li = document.createElement('li');
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.style.background = s.color;
    li.append(dot, s.name);
    return li;
  });
  const ul = document.createElement('ul');
  ul.className = 'legend';
  ul.append(...items);
  return ul;
}

/** Samples kept per chart on the page, in step with the server's keepSeconds. */
export function keepLast(list, n) {
  if (list.length > n) list.splice(0, list.length - n);
  return list;
}
