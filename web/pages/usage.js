// My usage: the credit balance from the API, and the ledger once the server has one.
import { api, whoami } from '../lib/api.js';
import { h, render, when } from '../lib/dom.js';

export async function usagePage(main) {
  const me = await whoami();
  const fresh = await api('GET', '/me');
  const ledger = await api('GET', '/usage').catch(() => undefined);
  render(main, h('h1', {}, 'My usage'),
    h('div', { class: 'card' }, h('p', {}, h('strong', {}, 'Credits: '), String(fresh.user.credits ?? me.user.credits))),
    h('h2', {}, 'Usage records'),
    ledger?.records
      ? h('table', {}, h('thead', {}, h('tr', {}, ['When', 'What', 'Seconds', 'Credits'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, ledger.records.map((r) => h('tr', {}, h('td', {}, when(r.at)), h('td', {}, r.what ?? r.kind ?? ''), h('td', {}, String(r.seconds ?? '')), h('td', {}, String(r.credits ?? ''))))))
      : h('p', { class: 'muted' }, 'This server does not record usage yet.'));
}
