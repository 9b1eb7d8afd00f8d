// One instance: what it runs, its actions (Start or Stop, Restart, Delete), ports and their
// addresses, limits, env var names, restarts and last exit, live CPU and memory charts,
// the proxy settings and its log (live, searchable, downloadable).
import { api, instanceAddresses, instanceUrl, liveEvents } from '../lib/api.js';
import { bytes, keepLast, legend, lineChart, percent } from '../lib/charts.js';
import { field, flash, h, render, stateBadge, when } from '../lib/dom.js';
import { logView } from '../lib/log-view.js';

/** States in which the instance is not running and will not come back by itself: it offers Start. */
const ENDED = new Set(['failed', 'exited', 'stopped']);

export const offersStart = (i) => i.desiredState !== 'running' || ENDED.has(i.state);

/** "exit code 1", "signal SIGKILL", or null when it has not exited yet. */
export function lastExit(i) {
  if (i.exitSignal) return `signal ${i.exitSignal}`;
  if (i.exitCode !== null && i.exitCode !== undefined) return `exit code ${i.exitCode}`;
  return null;
}

/** The instance's buttons: Start or Stop, Restart, Delete; `after` runs after each action. */
export function instanceActions(i, after) {
  const act = (label, fn, cls) =>
    h('button', { type: 'button', class: cls, 'aria-label': `${label} ${i.name}`, onclick: async () => {
      try { await fn(); flash(`${label}: ${i.name}`); await after(label); } catch (e) { flash(e.message, 'error'); }
    } }, label);
  return h('div', { class: 'actions' },
    offersStart(i) ? act('Start', () => api('POST', `/instances/${i.id}/start`)) : act('Stop', () => api('POST', `/instances/${i.id}/stop`)),
    act('Restart', () => api('POST', `/instances/${i.id}/restart`)),
    act('Delete', async () => {
      if (!confirm(`Delete ${i.name} and its files?`)) throw new Error('not deleted');
      await api('DELETE', `/instances/${i.id}`);
    }, 'danger'));
}

/** Each port with its host port and its address through the proxy (the first port's is the instance's own). */
export function portRows(i, addresses) {
  return i.ports.map((p, n) => {
    const url = instanceUrl(addresses, i.owner, i.name, n === 0 ? undefined : p.name);
    return h('tr', { 'data-port': p.name },
      h('td', {}, p.name), h('td', {}, String(p.hostPort)),
      h('td', {}, url ? h('a', { href: url, target: '_blank', rel: 'noopener' }, url) : h('span', { class: 'muted' }, 'no address (see docs/proxy.md)')));
  });
}

const dl = (pairs) => h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));

export async function instancePage(main, id) {
  let i = await api('GET', `/instances/${encodeURIComponent(id)}`);
  const addresses = await instanceAddresses();
  const head = h('div', { class: 'page-head' });
  const details = h('div', { class: 'card' });
  const cpuBox = h('div', { class: 'card chart-card' });
  const memBox = h('div', { class: 'card chart-card' });
  const settings = h('div');
  const log = logView(`/instances/${i.id}/logs`, i.name);
  const stats = await api('GET', `/instances/${i.id}/stats`).catch(() => null);
  const samples = stats?.samples ?? [];
  const cap = stats ? Math.ceil(stats.keepSeconds / stats.intervalSeconds) : 720;

  async function reload() {
    try {
      i = await api('GET', `/instances/${i.id}`);
    } catch {
      location.hash = '#/instances';
      return;
    }
    draw();
  }

  function draw() {
    render(head, h('h1', {}, i.name, ' ', stateBadge(i.state)), instanceActions(i, (label) => (label === 'Delete' ? void (location.hash = '#/instances') : reload())));
    const what = i.spec.shell ?? (i.spec.command ? i.spec.command.join(' ') : i.spec.source ? `${i.spec.process ?? 'web'} from ${i.spec.source.url ?? 'an uploaded archive'}` : '');
    const limits = i.spec.limits ?? {};
    const envNames = Object.keys(i.spec.env ?? {}).sort();
    render(details,
      h('h2', { style: 'margin-top:0' }, 'Details'),
      dl([
        ['Runs', h('code', { class: 'clamp', tabindex: 0 }, what)],
        ['Owner', i.owner],
        i.spec.driver || i.spec.image ? ['Driver', `${i.spec.driver ?? 'default'}${i.spec.image ? ` · ${i.spec.image}` : ''}`] : null,
        ['Restart policy', `${i.spec.restart ?? 'always'} · restarted ${i.restartCount} time${i.restartCount === 1 ? '' : 's'}`],
        ['Last exit', h('span', { class: 'last-exit' }, lastExit(i) ?? (i.state === 'running' ? 'none since this start' : 'none'))],
        i.lastError ? ['Last error', h('span', { class: 'error' }, i.lastError)] : null,
        ['Started', when(i.startedAt)],
        ['Limits', h('span', { class: 'limits' },
          `memory ${limits.memoryBytes ? bytes(limits.memoryBytes) : stats ? `${bytes(stats.memoryLimitBytes)} (default)` : 'default'} · ` +
          `CPU ${limits.cpus ?? (stats ? `${stats.cpuLimit} (default)` : 'default')} · pids ${limits.pids ?? 'default'} · disk ${limits.diskBytes ? bytes(limits.diskBytes) : 'default'}`)],
        ['Environment', envNames.length ? h('span', { class: 'env-names' }, envNames.map((k) => h('code', {}, k)).flatMap((c, n) => (n ? [', ', c] : [c]))) : h('span', { class: 'muted' }, 'no variables set')],
      ]),
      h('h3', {}, 'Ports'),
      i.ports.length
        ? h('table', { class: 'ports' }, h('thead', {}, h('tr', {}, ['Port', 'Host port', 'Address'].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', {}, portRows(i, addresses)))
        : h('p', { class: 'muted' }, 'No ports.'));
  }

  function drawCharts() {
    const cpu = [{ name: 'CPU', color: '#1f5fbf', values: samples.map((s) => ({ t: s.t, v: s.cpuPercent })) }];
    const mem = [{ name: 'memory', color: '#067647', values: samples.map((s) => ({ t: s.t, v: s.memoryBytes })) }];
    const last = samples[samples.length - 1];
    render(cpuBox, h('h2', {}, 'CPU ', h('span', { class: 'muted now cpu-now' }, percent(last?.cpuPercent))),
      lineChart(cpu, { title: 'CPU', label: percent, max: stats ? stats.cpuLimit * 100 : 100 }));
    render(memBox, h('h2', {}, 'Memory ', h('span', { class: 'muted now memory-now' }, bytes(last?.memoryBytes))),
      lineChart(mem, { title: 'Memory', label: bytes, max: stats?.memoryLimitBytes }), legend([{ name: `limit ${bytes(stats?.memoryLimitBytes)}`, color: '#eef0f3' }]));
  }

  render(main, head,
    h('div', { class: 'grid' }, details, settings),
    h('h2', {}, 'Resources', h('span', { class: 'muted', style: 'font-weight:normal;font-size:.85rem' }, stats ? ` · a sample every ${stats.intervalSeconds} s, the last ${Math.round(stats.keepSeconds / 60)} min` : '')),
    h('div', { class: 'grid charts' }, cpuBox, memBox),
    h('h2', {}, 'Log'), log.el);
  draw();
  drawCharts();
  void proxySettings(settings, i);

  const closeEvents = liveEvents({
    state: (e) => { if (e.id === i.id) void reload(); },
    deleted: (e) => { if (e.id === i.id) location.hash = '#/instances'; },
    stats: (tick) => {
      const s = tick.instances.find((x) => x.id === i.id);
      if (!s) return;
      samples.push({ t: s.t, cpuPercent: s.cpuPercent, memoryBytes: s.memoryBytes });
      keepLast(samples, cap);
      drawCharts();
    },
  });
  return () => {
    closeEvents();
    log.close();
  };
}

async function proxySettings(box, i) {
  let s;
  try {
    s = await api('GET', `/proxy/${i.owner}/${i.name}`);
  } catch {
    return;
  }
  const shared = h('input', { value: s.sharedWith.join(', '), placeholder: 'user names' });
  const sharedGroups = h('input', { value: (s.sharedWithGroups ?? []).join(', '), placeholder: 'group names' });
  const idle = h('input', { type: 'number', min: 0, value: s.idleTimeoutSeconds });
  const onDemand = h('input', { type: 'checkbox', style: 'width:auto', checked: s.startOnDemand });
  const isDefault = h('input', { type: 'checkbox', style: 'width:auto', checked: s.default });
  render(box, h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api('PUT', `/proxy/${i.owner}/${i.name}`, {
        sharedWith: shared.value.split(',').map((x) => x.trim()).filter(Boolean),
        sharedWithGroups: sharedGroups.value.split(',').map((x) => x.trim()).filter(Boolean),
        idleTimeoutSeconds: Number(idle.value) || 0,
        startOnDemand: onDemand.checked,
        default: isDefault.checked,
      });
      flash('saved');
    } catch (err) {
      flash(err.message, 'error');
    }
  } },
    h('h2', { style: 'margin-top:0' }, 'Proxy'),
    field('Shared with', shared),
    field('Shared with groups', sharedGroups),
    field('Stop after this many idle seconds (0 = never)', idle),
    h('label', {}, onDemand, ' Start when opened'),
    h('label', {}, isDefault, ' Open after login'),
    h('p', {}, h('button', { type: 'submit' }, 'Save'))));
}
