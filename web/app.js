// The dashboard shell: a hash router over page modules. Each page is `(main, params) => cleanup?`.
import { api, whoami } from './lib/api.js';
import { flash, h, render } from './lib/dom.js';
import { instancesPage } from './pages/instances.js';
import { instancePage } from './pages/instance.js';
import { accountPage } from './pages/account.js';
import { appPage, appsPage } from './pages/apps.js';
import { jobsPage } from './pages/jobs.js';
import { serverPage } from './pages/server.js';
import { tokensPage } from './pages/tokens.js';
import { usagePage } from './pages/usage.js';
import { usersPage } from './pages/users.js';

const routes = [
  [/^\/instances$/, (m) => instancesPage(m, { all: false })],
  [/^\/instances\/([^/]+)$/, (m, [id]) => instancePage(m, decodeURIComponent(id))],
  [/^\/apps$/, appsPage],
  [/^\/apps\/([^/]+)$/, (m, [ref]) => appPage(m, decodeURIComponent(ref))],
  [/^\/jobs$/, jobsPage],
  [/^\/tokens$/, tokensPage],
  [/^\/usage$/, usagePage],
  [/^\/account$/, accountPage],
  [/^\/admin\/users$/, usersPage],
  [/^\/admin\/instances$/, (m) => instancesPage(m, { all: true })],
  [/^\/admin\/server$/, serverPage],
];

let cleanup;
const main = document.getElementById('main');
/** The route being shown; a page still loading for an earlier one must not draw over it. */
let current = 0;

async function route() {
  const path = location.hash.replace(/^#/, '') || '/instances';
  const mine = ++current;
  if (typeof cleanup === 'function') cleanup();
  cleanup = undefined;
  for (const a of document.querySelectorAll('.top nav a')) {
    if (a.getAttribute('href') === `#${path}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Each route draws into a container of its own: one left behind by a newer route is
  // detached, so a slow page finishing late draws nowhere.
  const view = h('div', { class: 'view' });
  render(main, view);
  const found = routes.find(([re]) => re.test(path));
  if (!found) return render(view, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/instances' }, 'Back to your instances')));
  let done;
  try {
    done = await found[1](view, path.match(found[0]).slice(1));
  } catch (e) {
    render(view, h('h1', {}, 'Something went wrong'), h('p', { class: 'error' }, e.message));
  }
  if (mine !== current) {
    if (typeof done === 'function') done();
    return;
  }
  cleanup = done;
  main.focus({ preventScroll: true });
}

const me = await whoami();
document.getElementById('whoami').textContent = `${me.user.name}${me.user.role === 'admin' ? ' (admin)' : ''}`;
document.getElementById('logout-csrf').value = me.csrfToken ?? '';
if (me.user.role === 'admin') for (const a of document.querySelectorAll('[data-admin]')) a.hidden = false;
// A password session that must first register a passkey (auth.passkeys.require) can do nothing else.
const { enrolmentOnly } = await api('GET', '/passkeys').catch(() => ({}));
if (enrolmentOnly) location.hash = '#/account';
window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => flash(e.reason?.message ?? String(e.reason), 'error'));
await route();
