// Admin: users — add, remove, reset password, set the groups an admin gives; credits shown
// from the API; the groups below (members, quotas, grants: pages/groups.js).
import { api } from '../lib/api.js';
import { field, flash, h, render, when } from '../lib/dom.js';
import { groupsSection, loadGroups, membershipsOf, membershipText } from './groups.js';

export async function usersPage(main) {
  const tbody = h('tbody');
  const groupsBox = h('section');
  const name = h('input', { required: true, pattern: '[a-z0-9_.\\-]{1,64}', autocomplete: 'off' });
  const password = h('input', { type: 'password', required: true, minlength: 8, autocomplete: 'new-password' });
  const role = h('select', {}, h('option', { value: 'user' }, 'user'), h('option', { value: 'admin' }, 'admin'));
  const credits = h('input', { type: 'number', min: 0, value: 0 });

  async function reload() {
    const [{ users }, groups] = await Promise.all([api('GET', '/users'), loadGroups()]);
    const memberships = membershipsOf(users, groups);
    render(tbody, users.map((u) => h('tr', { 'data-user': u.name },
      h('td', {}, u.name), h('td', {}, u.role), h('td', {}, String(u.credits)),
      h('td', {}, memberships.get(u.name).map(membershipText).join(', ') || h('span', { class: 'muted' }, 'none')), h('td', {}, when(u.createdAt)),
      h('td', {}, h('div', { class: 'actions' },
        h('button', { type: 'button', 'aria-label': `Set the groups of ${u.name}`, onclick: async () => {
          // Only the admin's own memberships are set here; a provider's come back at each sign-in.
          const given = memberships.get(u.name).filter((m) => m.source === 'admin').map((m) => m.group);
          const answer = prompt(`Groups an admin gives ${u.name} (comma-separated; empty for none)`, given.join(', '));
          if (answer === null) return;
          const groups = [...new Set(answer.split(',').map((g) => g.trim()).filter(Boolean))];
          try { await api('PUT', `/users/${u.name}/groups`, { groups }); flash(`groups of ${u.name} set`); await reload(); } catch (e) { flash(e.message, 'error'); }
        } }, 'Set groups'),
        h('button', { type: 'button', 'aria-label': `Reset the password of ${u.name}`, onclick: async () => {
          const pw = prompt(`New password for ${u.name} (at least 8 characters)`);
          if (!pw) return;
          try { await api('PATCH', `/users/${u.name}`, { password: pw }); flash(`password of ${u.name} reset`); } catch (e) { flash(e.message, 'error'); }
        } }, 'Reset password'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Remove ${u.name}`, onclick: async () => {
          if (!confirm(`Remove ${u.name}?`)) return;
          try { await api('DELETE', `/users/${u.name}`); flash(`removed ${u.name}`); await reload(); } catch (e) { flash(e.message, 'error'); }
        } }, 'Remove'))))));
    groupsSection(groupsBox, groups, reload);
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
    h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Role', 'Credits', 'Groups', 'Created', ''].map((t) => h('th', { scope: 'col' }, t)))), tbody),
    h('div', { style: 'margin-top:1rem' }, form), groupsBox);
  await reload();
}
