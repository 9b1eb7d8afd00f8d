// Admin: users — add, remove, reset password; credits shown from the API.
import { api } from '../lib/api.js';
import { field, flash, h, render, when } from '../lib/dom.js';

export async function usersPage(main) {
  const tbody = h('tbody');
  const name = h('input', { required: true, pattern: '[a-z0-9_.\\-]{1,64}', autocomplete: 'off' });
  const password = h('input', { type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const role = h('select', {}, h('option', { value: 'user' }, 'user'), h('option', { value: 'admin' }, 'admin'));
  const credits = h('input', { type: 'number', min: 0, value: 0 });

  async function reload() {
    const { users } = await api('GET', '/users');
    render(tbody, users.map((u) => h('tr', { 'data-user': u.name },
      h('td', {}, u.name), h('td', {}, u.role), h('td', {}, String(u.credits)), h('td', {}, when(u.createdAt)),
      h('td', {}, h('div', { class: 'actions' },
        h('button', { type: 'button', 'aria-label': `Reset the password of ${u.name}`, onclick: async () => {
          const pw = prompt(`New password for ${u.name} (at least 8 characters)`);
          if (!pw) return;
          try { await api('PATCH', `/users/${u.name}`, { password: pw }); flash(`password of ${u.name} reset`); } catch (e) { flash(e.message, 'error'); }
        } }, 'Reset password'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Remove ${u.name}`, onclick: async () => {
          if (!confirm(`Remove ${u.name}?`)) return;
          try { await api('DELETE', `/users/${u.name}`); flash(`removed ${u.name}`); await reload(); } catch (e) { flash(e.message, 'error'); }
        } }, 'Remove'))))));
  }

  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api('POST', '/users', { name: name.value, password: password.value, role: role.value, credits: Number(credits.value) || 0 });
      flash(`added ${name.value}`);
      form.reset();
      await reload();
    } catch (err) {
      flash(err.message, 'error');
    }
  } },
    h('h2', { style: 'margin-top:0' }, 'Add a user'),
    h('div', { class: 'row' }, h('div', {}, field('Name', name)), h('div', {}, field('Password', password)),
      h('div', {}, field('Role', role)), h('div', {}, field('Credits', credits))),
    h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Add')));

  render(main, h('h1', {}, 'Users'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Role', 'Credits', 'Created', ''].map((t) => h('th', { scope: 'col' }, t)))), tbody),
    h('div', { style: 'margin-top:1rem' }, form));
  await reload();
}
