// My instances (or every instance, for admins) with live state from the events stream.
import { api, instanceAddresses, instanceUrl, whoami } from '../lib/api.js';
import { field, flash, h, render, stateBadge } from '../lib/dom.js';

export async function instancesPage(main, { all }) {
  const me = await whoami();
  const addresses = await instanceAddresses();
  const tbody = h('tbody');
  const table = h('table', {}, h('caption', { class: 'muted', style: 'text-align:left;padding:.4rem .6rem' }, 'State updates live.'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), all && h('th', { scope: 'col' }, 'Owner'), h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col' }, 'Restarts'), h('th', { scope: 'col' }, 'Actions'))), tbody);
  render(main, h('h1', {}, all ? 'All instances' : 'My instances'), table, all ? null : h('div', { style: 'margin-top:1rem' }, createForm(reload)));

  let instances = [];
  async function reload() {
    const list = (await api('GET', '/instances')).instances;
    instances = all ? list : list.filter((i) => i.owner === me.user.name);
    draw();
  }
  function draw() {
    if (!instances.length) return render(tbody, h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No instances yet.')));
    render(tbody, instances.map((i) => row(i, all, reload, instanceUrl(addresses, i.owner, i.name))));
  }
  await reload();

  const events = new EventSource('/api/v1/events');
  events.addEventListener('state', (e) => {
    const ev = JSON.parse(e.data);
    const i = instances.find((x) => x.id === ev.id);
    if (!i) return void reload();
    Object.assign(i, { state: ev.state, desiredState: ev.desiredState, restartCount: ev.restartCount });
    draw();
  });
  events.addEventListener('deleted', () => void reload());
  return () => events.close();
}

function row(i, all, reload, url) {
  const act = (label, fn, cls) =>
    h('button', { type: 'button', class: cls, 'aria-label': `${label} ${i.name}`, onclick: async () => {
      try { await fn(); flash(`${label}: ${i.name}`); await reload(); } catch (e) { flash(e.message, 'error'); }
    } }, label);
  const open = i.ports.length && url ? h('a', { class: 'button', href: url, target: '_blank', rel: 'noopener' }, 'Open') : null;
  return h('tr', { 'data-instance': i.name },
    h('td', {}, h('a', { href: `#/instances/${i.id}` }, i.name)),
    all && h('td', {}, i.owner),
    h('td', {}, stateBadge(i.state)),
    h('td', {}, String(i.restartCount)),
    h('td', {}, h('div', { class: 'actions' },
      open,
      i.desiredState === 'running' ? act('Stop', () => api('POST', `/instances/${i.id}/stop`)) : act('Start', () => api('POST', `/instances/${i.id}/start`)),
      act('Restart', () => api('POST', `/instances/${i.id}/restart`)),
      act('Delete', async () => { if (confirm(`Delete ${i.name} and its files?`)) await api('DELETE', `/instances/${i.id}`); }, 'danger'))));
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
