// Admin: groups, as the users page shows them — who is in each group and from which source
// (an identity provider or an admin), each group's quotas, and credits granted to every
// member. A group exists while someone is in it or it has quotas (GET /groups: all in one read).
import { api } from '../lib/api.js';
import { field, flash, h, render } from '../lib/dom.js';

const MiB = 1024 * 1024;
const QUOTAS = [
  ['instances', 'Instances', 1],
  ['runningInstances', 'Running instances', 1],
  ['memoryBytes', 'Memory (MiB)', MiB],
  ['concurrentJobs', 'Concurrent jobs', 1],
];

/** Every group with its members and quotas (admins). */
export const loadGroups = async () => (await api('GET', '/groups')).groups;

/** Each user's memberships, by user name (every user has an entry). */
export function membershipsOf(users, groups) {
  const by = new Map(users.map((u) => [u.name, []]));
  for (const g of groups) for (const m of g.members) by.get(m.user)?.push({ group: g.group, source: m.source });
  return by;
}

/** "staff (oidc:corp)", "team (admin)": a membership and where it comes from. */
export const membershipText = (m) => `${m.group} (${m.source})`;

const quotaText = (q) => {
  const set = QUOTAS.filter(([k]) => q[k] !== undefined && q[k] !== null)
    .map(([k, label, unit]) => `${label.replace(/ \(MiB\)$/, '')}: ${q[k] === 0 ? 'no limit' : unit === MiB ? `${q[k] / MiB} MiB` : q[k]}`);
  return set.length ? set.join(', ') : 'server defaults';
};

/** The groups table under the users table; `reload` refreshes the whole page. */
export function groupsSection(box, groups, reload) {
  const memberText = (g) => g.members.map((m) => `${m.user}${m.source === 'admin' ? '' : ` (${m.source})`}`).join(', ') || 'nobody';

  const quotaForm = (group, current) => {
    const inputs = QUOTAS.map(([k, label, unit]) => [k, unit, h('input', {
      type: 'number', min: 0, 'aria-label': `${label} for ${group}`,
      value: current[k] === undefined || current[k] === null ? '' : current[k] / unit,
      placeholder: 'default',
    }), label]);
    return h('form', { class: 'row', onsubmit: async (e) => {
      e.preventDefault();
      // Empty: back to the server default (null); 0: no limit.
      const patch = Object.fromEntries(inputs.map(([k, unit, input]) => [k, input.value === '' ? null : Math.round(Number(input.value) * unit)]));
      try { await api('PUT', `/groups/${encodeURIComponent(group)}/quotas`, patch); flash(`quotas of ${group} saved`); await reload(); } catch (err) { flash(err.message, 'error'); }
    } }, inputs.map(([, , input, label]) => h('div', {}, field(label, input))), h('div', {}, h('button', { type: 'submit', 'aria-label': `Save the quotas of ${group}` }, 'Save quotas')));
  };

  render(box, h('h2', {}, 'Groups'),
    groups.length ? h('table', {},
      h('thead', {}, h('tr', {}, ['Group', 'Members', 'Quotas', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, groups.map(({ group: g, quotas }, i) => h('tr', { 'data-group': g },
        h('td', {}, g), h('td', {}, memberText(groups[i])), h('td', {}, quotaText(quotas)),
        h('td', {}, h('div', { class: 'actions' },
          h('button', { type: 'button', 'aria-label': `Grant credits to ${g}`, onclick: async () => {
            const amount = Number(prompt(`Credits to grant each member of ${g} (negative takes away)`));
            if (!amount) return;
            try {
              const { granted } = await api('POST', `/groups/${encodeURIComponent(g)}/credits`, { amount });
              flash(`granted ${amount} to ${granted.length} member${granted.length === 1 ? '' : 's'} of ${g}`);
              await reload();
            } catch (err) { flash(err.message, 'error'); }
          } }, 'Grant credits'),
          h('details', {}, h('summary', {}, `Quotas of ${g}`), quotaForm(g, quotas))))))))
      : h('p', { class: 'muted' }, 'No groups yet: give a user one, or sign users in through a provider that sends groups.'));
}
