// Apps (docs/apps.md): the list, and one app's page — its address, releases (with
// rollback), copies, config var names, the state of a switch in progress, and its log (every
// copy's lines across deploys).
import { api, liveEvents, whoami } from '../lib/api.js';
import { field, flash, h, render, stateBadge, when } from '../lib/dom.js';
import { logView } from '../lib/log-view.js';

/** `owner:name`: how the API names any app, the caller's own or (admins) another's. */
const refOf = (a) => encodeURIComponent(`${a.owner}:${a.name}`);
const formationText = (f) => Object.entries(f).map(([type, n]) => `${type}=${n}`).join(' ') || 'nothing';
const switchText = (s) => `switching to v${s.version}: ${s.phase} since ${new Date(s.startedAt).toLocaleTimeString()}`;

export async function appsPage(main) {
  const { apps } = await api('GET', '/apps');
  const me = (await whoami()).user;
  const others = apps.some((a) => a.owner !== me.name);
  render(main, h('h1', {}, 'Apps'),
    apps.length
      ? h('table', { class: 'apps' },
        h('thead', {}, h('tr', {}, ['App', others && 'Owner', 'Release', 'Copies', 'Address'].filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, apps.map((a) => h('tr', { 'data-app': a.name },
          h('td', {}, h('a', { href: `#/apps/${refOf(a)}` }, a.name)),
          others && h('td', {}, a.owner),
          h('td', {}, a.currentVersion ? `v${a.currentVersion}` : 'none serving', a.switch ? [' ', h('span', { class: 'state state-starting' }, 'switching')] : null),
          h('td', {}, `${a.copies.filter((c) => c.ready || c.type !== 'web').length} of ${a.copies.length} · ${formationText(a.formation)}`),
          h('td', {}, a.url ? h('a', { href: a.url, target: '_blank', rel: 'noopener' }, a.url) : h('span', { class: 'muted' }, 'no address'))))))
      : h('p', { class: 'muted' }, 'No apps yet. Deploy one with ', h('code', {}, 'corral deploy'), ' (see docs/apps.md).'));
}

export async function appPage(main, ref) {
  let app = await api('GET', `/apps/${encodeURIComponent(ref)}`);
  const base = `/apps/${refOf(app)}`;
  const head = h('div', { class: 'page-head' });
  const facts = h('div', { class: 'card' });
  const copies = h('div');
  const releases = h('div');
  const log = logView(`${base}/logs`, app.name);
  let releaseList = [];

  async function reload() {
    try {
      [app, releaseList] = await Promise.all([api('GET', base), api('GET', `${base}/releases`).then((r) => r.releases)]);
    } catch {
      location.hash = '#/apps';
      return;
    }
    draw();
  }

  function draw() {
    render(head, h('h1', {}, app.name, ' ', app.currentVersion ? h('span', { class: 'state state-running' }, `v${app.currentVersion}`) : h('span', { class: 'state' }, 'none serving')),
      h('div', { class: 'actions' },
        h('button', { type: 'button', 'aria-label': `Restart ${app.name}`, onclick: () => act('Restart', () => api('POST', `${base}/restart`)) }, 'Restart')));
    render(facts,
      h('h2', { style: 'margin-top:0' }, 'App'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Address'), h('dd', {}, app.url ? h('a', { class: 'app-url', href: app.url, target: '_blank', rel: 'noopener' }, app.url) : h('span', { class: 'muted' }, 'none: its or its owner\'s name cannot be a host name')),
        h('dt', {}, 'Owner'), h('dd', {}, app.owner),
        h('dt', {}, 'Formation'), h('dd', {}, formationText(app.formation)),
        h('dt', {}, 'Config vars'), h('dd', { class: 'config-vars' }, app.configVars.length ? app.configVars.map((k) => h('code', {}, k)).flatMap((c, n) => (n ? [', ', c] : [c])) : h('span', { class: 'muted' }, 'none')),
        h('dt', {}, 'Switch'), h('dd', { class: 'switch-state' }, app.switch ? h('span', { class: 'state state-starting' }, switchText(app.switch)) : h('span', { class: 'muted' }, 'none in progress'))));
    render(copies, h('table', { class: 'copies' },
      h('thead', {}, h('tr', {}, ['Copy', 'Type', 'Release', 'Role', 'State', 'In rotation', 'Restarts', 'Port'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, app.copies.length ? app.copies.map((c) => h('tr', { 'data-copy': c.instance },
        h('td', {}, c.id ? h('a', { href: `#/instances/${c.id}` }, c.instance) : c.instance),
        h('td', {}, `${c.type}.${c.index}`), h('td', {}, `v${c.version}`), h('td', {}, c.role), h('td', {}, stateBadge(c.state)),
        h('td', {}, c.type === 'web' ? (c.ready ? 'yes' : 'no') : '–'), h('td', {}, String(c.restartCount)),
        h('td', {}, c.ports.map((p) => `${p.name}:${p.hostPort}`).join(' ') || '–')))
        : h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No copies.')))));
    render(releases, h('table', { class: 'releases' },
      h('thead', {}, h('tr', {}, ['Release', 'Status', 'What', 'By', 'When', 'Config vars', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, releaseList.map((r) => h('tr', { 'data-release': r.version },
        h('td', {}, `v${r.version}`),
        h('td', {}, h('span', { class: `state state-${r.status === 'active' ? 'running' : r.status === 'failed' ? 'failed' : r.status === 'superseded' ? 'stopped' : 'starting'}` }, r.status)),
        h('td', {}, r.description, r.error ? h('div', { class: 'error' }, r.error) : null),
        h('td', {}, r.createdBy), h('td', {}, when(r.createdAt)),
        h('td', {}, r.configVars.join(', ') || '–'),
        h('td', {}, r.version !== app.currentVersion && r.sourceKept && r.status !== 'failed' && !app.switch
          ? h('button', { type: 'button', 'aria-label': `Roll back to v${r.version}`, onclick: () => {
            if (confirm(`Roll back ${app.name} to v${r.version}? (a new release with its source and config vars)`)) void act(`Rollback to v${r.version}`, () => api('POST', `${base}/rollback`, { version: r.version }));
          } }, 'Roll back')
          : null))))));
  }

  async function act(label, fn) {
    const poll = setInterval(() => void reload(), 1000); // the switch's phases show as they pass
    try {
      await fn();
      flash(`${label}: done`);
    } catch (e) {
      flash(e.message, 'error');
    } finally {
      clearInterval(poll);
      await reload();
    }
  }

  render(main, head, h('div', { class: 'grid' }, facts, scaleForm(app, base, reload)),
    h('h2', {}, 'Copies'), copies, h('h2', {}, 'Releases'), releases, h('h2', {}, 'Log'), log.el);
  await reload();
  // A copy changing state (or a switch another client started) shows up here.
  const closeEvents = liveEvents({ state: (e) => { if (e.name.startsWith(`${app.name}.`)) void reload(); }, deleted: (e) => { if (e.name.startsWith(`${app.name}.`)) void reload(); } });
  const timer = setInterval(() => { if (app.switch) void reload(); }, 2000);
  return () => {
    closeEvents();
    clearInterval(timer);
    log.close();
  };
}

function scaleForm(app, base, reload) {
  const inputs = Object.entries(app.formation).map(([type, n]) => [type, h('input', { type: 'number', min: 0, max: 100, value: n, id: `scale-${type}` })]);
  return h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api('PUT', `${base}/formation`, Object.fromEntries(inputs.map(([type, input]) => [type, Number(input.value)])));
      flash('scaled');
      await reload();
    } catch (err) {
      flash(err.message, 'error');
    }
  } },
    h('h2', { style: 'margin-top:0' }, 'Scale'),
    inputs.map(([type, input]) => field(`${type} copies`, input)),
    h('p', {}, h('button', { type: 'submit' }, 'Scale')));
}
