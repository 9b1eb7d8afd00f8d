// A kept log on a page (an instance's or an app's): live lines, each with its time and a mark
// for stdout, stderr or corral's own note (and the copy, in an app's log); a search in
// everything kept (on the server); a download of it all.
import { streamLines } from './api.js';
import { flash, h, render } from './dom.js';

const MARKS = { stdout: 'out', stderr: 'err', corral: 'corral' };
const SEARCH_LINES = 1000;

const time = (iso) => {
  const d = new Date(iso);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
};

function lineNode(e) {
  return h('span', { class: `log-line ${e.stream}`, 'data-stream': e.stream },
    h('time', { datetime: e.t, title: new Date(e.t).toLocaleString() }, time(e.t)), ' ',
    h('span', { class: `mark mark-${e.stream}`, title: e.stream === 'corral' ? "corral's own note" : e.stream }, MARKS[e.stream] ?? e.stream), ' ',
    e.source ? [h('span', { class: 'source' }, e.source), ' '] : null,
    `${e.line}\n`);
}

/** `base`: the API path of the log (e.g. `/instances/{id}/logs`); `name`: what the log is of. */
export function logView(base, name) {
  const pre = h('pre', { class: 'log', 'aria-live': 'off', tabindex: 0, 'aria-label': `Output of ${name}` });
  const status = h('p', { class: 'muted log-status', 'aria-live': 'polite' }, 'Live: new lines appear as they come.');
  const query = h('input', { type: 'search', id: `log-search-${name.replace(/\W+/g, '-')}`, placeholder: 'text to find', maxlength: 200 });
  let live;

  function follow() {
    live?.abort();
    live = new AbortController();
    render(pre);
    status.textContent = 'Live: new lines appear as they come.';
    streamLines(`${base}?follow=true&tail=200&format=ndjson`, (line) => {
      const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(lineNode(JSON.parse(line)));
      if (stick) pre.scrollTop = pre.scrollHeight;
    }, live.signal).catch((e) => { if (e.name !== 'AbortError') flash(e.message, 'error'); });
  }

  async function search(text) {
    live?.abort();
    status.textContent = 'Searching…';
    try {
      const body = await fetch(`/api/v1${base}?search=${encodeURIComponent(text)}&tail=${SEARCH_LINES}&format=ndjson`).then(async (r) => {
        if (!r.ok) throw new Error((await r.json().catch(() => null))?.error?.message ?? `${r.status} ${r.statusText}`);
        return r.text();
      });
      const lines = body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      render(pre, lines.map(lineNode));
      status.textContent = `${lines.length === SEARCH_LINES ? `The last ${SEARCH_LINES}` : lines.length} line${lines.length === 1 ? '' : 's'} containing “${text}” in the kept log.`;
    } catch (e) {
      status.textContent = e.message;
    }
  }

  const el = h('section', { class: 'logs', 'aria-label': `Log of ${name}` },
    h('form', { class: 'row log-tools', role: 'search', onsubmit: (e) => {
      e.preventDefault();
      if (query.value.trim()) void search(query.value.trim());
      else follow();
    } },
      h('div', {}, h('label', { for: query.id }, 'Search the log'), query),
      h('div', { class: 'actions', style: 'flex:0 0 auto' },
        h('button', { type: 'submit' }, 'Search'),
        h('button', { type: 'button', onclick: () => { query.value = ''; follow(); } }, 'Live'),
        h('a', { class: 'button', href: `/api/v1${base}?download=true`, download: `${name}.log` }, 'Download'))),
    status, pre);
  follow();
  return { el, close: () => live?.abort() };
}
