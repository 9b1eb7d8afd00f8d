// One instance: details, proxy settings and its live log.
import { api, instanceAddresses, instanceUrl, streamLines } from '../lib/api.js';
import { field, flash, h, render, stateBadge, when } from '../lib/dom.js';

export async function instancePage(main, id) {
  const i = await api('GET', `/instances/${encodeURIComponent(id)}`);
  const url = instanceUrl(await instanceAddresses(), i.owner, i.name);
  const log = h('pre', { class: 'log', 'aria-live': 'off', tabindex: 0, 'aria-label': `Output of ${i.name}` });
  const settings = h('div');
  const what = i.spec.shell ?? (i.spec.command ? i.spec.command.join(' ') : i.spec.source ? JSON.stringify(i.spec.source) : '');
  render(main,
    h('h1', {}, i.name, ' ', stateBadge(i.state)),
    h('div', { class: 'grid' },
      h('div', { class: 'card' },
        h('p', {}, h('strong', {}, 'Runs: '), h('code', { class: 'clamp', tabindex: 0 }, what)),
        h('p', {}, h('strong', {}, 'Owner: '), i.owner),
        h('p', {}, h('strong', {}, 'Ports: '), i.ports.map((p) => `${p.name} → ${p.hostPort}`).join(', ') || 'none'),
        h('p', {}, h('strong', {}, 'Started: '), when(i.startedAt)),
        i.lastError && h('p', { class: 'error' }, i.lastError),
        i.ports.length && url ? h('p', {}, h('a', { class: 'button', href: url, target: '_blank', rel: 'noopener' }, 'Open'), ' ', h('code', {}, url)) : null,
        i.ports.length && !url ? h('p', { class: 'muted' }, 'No address: the instance or owner name cannot be a host name (see docs/proxy.md).') : null),
      settings),
    h('h2', {}, 'Live log'), log);
  void proxySettings(settings, i);

  const abort = new AbortController();
  streamLines(`/instances/${i.id}/logs?follow=true&tail=200&format=ndjson`, (line) => {
    const e = JSON.parse(line);
    const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(h('span', { class: e.stream === 'stderr' ? 'stderr' : undefined }, `${e.line}\n`));
    if (stick) log.scrollTop = log.scrollHeight;
  }, abort.signal).catch((e) => { if (e.name !== 'AbortError') flash(e.message, 'error'); });
  return () => abort.abort();
}

async function proxySettings(box, i) {
  let s;
  try {
    s = await api('GET', `/proxy/${i.owner}/${i.name}`);
  } catch {
    return;
  }
  const shared = h('input', { value: s.sharedWith.join(', '), placeholder: 'user names' });
  const idle = h('input', { type: 'number', min: 0, value: s.idleTimeoutSeconds });
  const onDemand = h('input', { type: 'checkbox', style: 'width:auto', checked: s.startOnDemand });
  const isDefault = h('input', { type: 'checkbox', style: 'width:auto', checked: s.default });
  render(box, h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api('PUT', `/proxy/${i.owner}/${i.name}`, {
        sharedWith: shared.value.split(',').map((x) => x.trim()).filter(Boolean),
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
    field('Stop after this many idle seconds (0 = never)', idle),
    h('label', {}, onDemand, ' Start when opened'),
    h('label', {}, isDefault, ' Open after login'),
    h('p', {}, h('button', { type: 'submit' }, 'Save'))));
}
