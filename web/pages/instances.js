// My instances (or every instance, for admins) with live state from the events stream,
// their ports and addresses, and CPU and memory sparklines from the stats samples.
import { api, instanceAddresses, instanceUrl, liveEvents, whoami } from '../lib/api.js';
import { bytes, keepLast, percent, sparkline } from '../lib/charts.js';
import { field, flash, h, render, stateBadge } from '../lib/dom.js';
import { instanceActions } from './instance.js';

/** Samples drawn per sparkline (the newest; 5 minutes at the default interval). */
const SPARK_SAMPLES = 60;

export async function instancesPage(main, { all }) {
  const me = await whoami();
  const addresses = await instanceAddresses();
  const tbody = h('tbody');
  const cols = ['Name', all && 'Owner', 'State', 'Ports', 'CPU', 'Memory', 'Restarts', 'Actions'].filter(Boolean);
  const table = h('table', { class: 'instances' }, h('caption', { class: 'muted', style: 'text-align:left;padding:.4rem .6rem' }, 'State, CPU and memory update live.'),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))), tbody);
  render(main, h('h1', {}, all ? 'All instances' : 'My instances'), table, all ? null : h('div', { style: 'margin-top:1rem' }, createForm(reload)));

  let instances = [];
  /** Recent samples per instance id, oldest first. */
  const samples = new Map();
  async function reload() {
    const list = (await api('GET', '/instances')).instances;
    instances = all ? list : list.filter((i) => i.owner === me.user.name);
    await Promise.all(instances.filter((i) => i.state === 'running' && !samples.has(i.id)).map(async (i) => {
      const st = await api('GET', `/instances/${i.id}/stats`).catch(() => null);
      samples.set(i.id, keepLast(st?.samples ?? [], SPARK_SAMPLES));
    }));
    draw();
  }
  function draw() {
    if (!instances.length) return render(tbody, h('tr', {}, h('td', { colspan: cols.length, class: 'muted' }, 'No instances yet.')));
    render(tbody, instances.map((i) => row(i, all, reload, addresses, samples.get(i.id) ?? [])));
  }
  await reload();

  return liveEvents({
    state: (ev) => {
      const i = instances.find((x) => x.id === ev.id);
      if (!i) return void reload();
      Object.assign(i, { state: ev.state, desiredState: ev.desiredState, restartCount: ev.restartCount, exitCode: ev.exitCode, exitSignal: ev.exitSignal });
      draw();
    },
    deleted: () => void reload(),
    stats: (tick) => {
      for (const s of tick.instances) {
        const list = samples.get(s.id) ?? [];
        list.push(s);
        samples.set(s.id, keepLast(list, SPARK_SAMPLES));
      }
      draw();
    },
  });
}

/** A sparkline with the latest value written beside it. */
function sparkCell(values, label, name, opts) {
  const last = [...values].reverse().find((v) => v != null);
  return h('span', { class: 'spark-cell' }, sparkline(values, { ...opts, label, name, width: 90, height: 22 }), ' ', h('span', { class: 'now' }, last == null ? '…' : label(last)));
}

function row(i, all, reload, addresses, samples) {
  const url = instanceUrl(addresses, i.owner, i.name);
  const open = i.ports.length && url ? h('a', { class: 'button', href: url, target: '_blank', rel: 'noopener' }, 'Open') : null;
  const running = i.state === 'running';
  return h('tr', { 'data-instance': i.name },
    h('td', {}, h('a', { href: `#/instances/${i.id}` }, i.name)),
    all && h('td', {}, i.owner),
    h('td', {}, stateBadge(i.state)),
    h('td', { class: 'ports' }, i.ports.length ? i.ports.map((p) => h('code', { title: `host port ${p.hostPort}` }, `${p.name}:${p.hostPort}`)).flatMap((c, n) => (n ? [' ', c] : [c])) : h('span', { class: 'muted' }, '–')),
    h('td', { class: 'cpu' }, running || samples.length ? sparkCell(samples.map((s) => s.cpuPercent), percent, `CPU of ${i.name}: `, { max: 100 }) : h('span', { class: 'muted' }, '–')),
    h('td', { class: 'memory' }, running || samples.length ? sparkCell(samples.map((s) => s.memoryBytes), bytes, `Memory of ${i.name}: `, { cls: 'mem' }) : h('span', { class: 'muted' }, '–')),
    h('td', {}, String(i.restartCount)),
    h('td', {}, h('div', { class: 'actions' }, open, instanceActions(i, reload))));
}

function createForm(reload) {
  const name = h('input', { name: 'name', required: true, pattern: '[a-z0-9][a-z0-9-]{0,62}', autocomplete: 'off' });
  const shell = h('input', { name: 'shell', placeholder: 'python3 -m http.server $PORT_HTTP' });
  const ports = h('input', { name: 'ports', placeholder: 'http' });
  const archive = h('input', { name: 'archive', type: 'file', accept: '.tar,.tgz,.tar.gz,.zip' });
  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    const spec = { name: name.value };
    const portNames = ports.value.split(',').map((s) => s.trim()).filter(Boolean);
    if (portNames.length) spec.ports = portNames.map((n) => ({ name: n }));
    try {
      if (archive.files.length) {
        const body = new FormData();
        body.append('spec', JSON.stringify(spec));
        body.append('archive', archive.files[0]);
        await api('POST', '/instances', body);
      } else {
        if (!shell.value.trim()) throw new Error('give a command or an archive');
        await api('POST', '/instances', { ...spec, shell: shell.value });
      }
      flash(`created ${spec.name}`);
      form.reset();
      await reload();
    } catch (err) {
      flash(err.message, 'error');
    }
  } },
    h('h2', {}, 'Create an instance'),
    h('div', { class: 'row' }, h('div', {}, field('Name', name)), h('div', {}, field('Ports (comma-separated names)', ports))),
    field('Command (run with sh -c)', shell),
    field('…or a Procfile app archive (tar, tar.gz, zip)', archive),
    h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Create')));
  return form;
}
