// My account: who I am, my groups (and where each comes from), my passkeys — add one,
// rename, remove. A password session of a user who must use a passkey lands here first.
import { api, whoami } from '../lib/api.js';
import { field, flash, h, render, when } from '../lib/dom.js';
import { createPasskey } from '../lib/webauthn.js';

export async function accountPage(main) {
  const me = await whoami();
  const groups = h('div');
  const tbody = h('tbody');
  const notice = h('div', { 'aria-live': 'polite' });
  const name = h('input', { maxlength: 64, autocomplete: 'off', placeholder: 'e.g. laptop' });

  async function reload() {
    const { passkeys, required, enrolmentOnly } = await api('GET', '/passkeys');
    render(notice, enrolmentOnly
      ? h('p', { class: 'error', role: 'alert' }, 'This account must sign in with a passkey. Add one below to continue.')
      : required ? h('p', { class: 'muted' }, 'This account signs in with a passkey; a password alone is not enough.') : null);
    render(tbody, passkeys.length ? passkeys.map((p) => h('tr', { 'data-passkey': p.id },
      h('td', {}, p.name), h('td', {}, when(p.createdAt)), h('td', {}, when(p.lastUsedAt)),
      h('td', {}, h('div', { class: 'actions' },
        h('button', { type: 'button', 'aria-label': `Rename ${p.name}`, onclick: async () => {
          const next = prompt('New name for this passkey', p.name);
          if (!next) return;
          try { await api('PATCH', `/passkeys/${p.id}`, { name: next }); flash(`renamed to ${next}`); await reload(); } catch (e) { flash(e.message, 'error'); }
        } }, 'Rename'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Remove ${p.name}`, onclick: async () => {
          if (!confirm(`Remove the passkey ${p.name}? It will no longer sign you in.`)) return;
          try { await api('DELETE', `/passkeys/${p.id}`); flash(`removed ${p.name}`); await reload(); } catch (e) { flash(e.message, 'error'); }
        } }, 'Remove')))))
      : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No passkeys yet.')));
  }

  async function loadGroups() {
    const { memberships } = await api('GET', `/users/${encodeURIComponent(me.user.name)}/groups`);
    render(groups, memberships.length
      ? h('ul', { class: 'groups' }, memberships.map((m) => h('li', {}, m.group, ' ', h('span', { class: 'muted' }, `(${m.source === 'admin' ? 'given by an admin' : `from ${m.source}`})`))))
      : h('p', { class: 'muted' }, 'You are in no group.'));
  }

  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const options = await api('POST', '/passkeys/registration/options');
      const response = await createPasskey(options);
      const added = await api('POST', '/passkeys/registration', { response, ...(name.value && { name: name.value }) });
      flash(`added the passkey ${added.name}`);
      form.reset();
      await reload();
    } catch (err) {
      flash(err.name === 'NotAllowedError' ? 'The passkey was not created (cancelled or timed out).' : err.message, 'error');
    }
  } },
    h('h2', { style: 'margin-top:0' }, 'Add a passkey'),
    h('p', { class: 'muted' }, 'Sign in with your device (fingerprint, face, PIN or security key) instead of a password.'),
    h('div', { class: 'row' }, h('div', {}, field('Passkey name', name))),
    h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Add a passkey')));

  render(main, h('h1', {}, 'My account'),
    h('p', {}, h('strong', {}, me.user.name), ` · ${me.user.role}`),
    notice,
    h('h2', {}, 'Passkeys'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Added', 'Last used', ''].map((t) => h('th', { scope: 'col' }, t)))), tbody),
    h('div', { style: 'margin-top:1rem' }, form),
    h('h2', {}, 'Groups'), groups);
  await reload();
  // An enrolment-only session may not read its groups yet; the passkeys come first.
  await loadGroups().catch(() => render(groups, h('p', { class: 'muted' }, 'Shown once you have signed in with a passkey.')));
}
