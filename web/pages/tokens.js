// My tokens: list, create (the token is shown once), revoke.
import { api } from '../lib/api.js';
import { field, flash, h, render, when } from '../lib/dom.js';

const SCOPES = ['instances:read', 'instances:write', 'jobs:read', 'jobs:write', 'proxy:read', 'proxy:write', 'account:write'];

export async function tokensPage(main) {
  const tbody = h('tbody');
  const shown = h('div', { 'aria-live': 'polite' });
  const name = h('input', { required: true, autocomplete: 'off' });
  const days = h('input', { type: 'number', min: 1, value: 90 });
  const boxes = SCOPES.map((s) => h('label', { style: 'font-weight:normal;display:inline-flex;gap:.3rem;margin-right:1rem' },
    h('input', { type: 'checkbox', value: s, style: 'width:auto', checked: true }), s));

  async function reload() {
    const { tokens } = await api('GET', '/tokens');
    render(tbody, tokens.length ? tokens.map((t) => h('tr', {},
      h('td', {}, t.name), h('td', {}, t.scopes.join(' ')), h('td', {}, when(t.expiresAt)), h('td', {}, when(t.lastUsedAt)),
      h('td', {}, t.revokedAt ? h('span', { class: 'muted' }, 'revoked') : h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${t.name}`,
        onclick: async () => { await api('DELETE', `/tokens/${t.id}`); flash(`revoked ${t.name}`); await reload(); } }, 'Revoke'))))
      : h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No tokens.')));
  }

  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const scopes = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
      const { token } = await api('POST', '/tokens', { name: name.value, scopes, ttlSeconds: Number(days.value) * 86400 });
      render(shown, h('div', { class: 'card', style: 'margin-top:1rem' }, h('p', {}, 'Your new token (shown only now):'),
        h('pre', { class: 'log' }, token)));
      form.reset();
      await reload();
    } catch (err) {
      flash(err.message, 'error');
    }
  } },
    h('h2', { style: 'margin-top:0' }, 'New token'),
    h('div', { class: 'row' }, h('div', {}, field('Name', name)), h('div', {}, field('Lifetime (days)', days))),
    h('fieldset', { style: 'border:0;padding:0;margin:.6rem 0' }, h('legend', { style: 'font-weight:600' }, 'Scopes'), boxes),
    h('button', { type: 'submit', class: 'primary' }, 'Create'));

  render(main, h('h1', {}, 'My tokens'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Scopes', 'Expires', 'Last used', ''].map((t) => h('th', { scope: 'col' }, t)))), tbody),
    h('div', { style: 'margin-top:1rem' }, form), shown);
  await reload();
}
