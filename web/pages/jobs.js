// Run a job from a small editor and see its output.
import { api } from '../lib/api.js';
import { field, flash, h, render } from '../lib/dom.js';

export async function jobsPage(main) {
  const { runtimes } = await api('GET', '/runtimes').catch(() => ({ runtimes: [] }));
  const runtime = h('select', { name: 'runtime' }, runtimes.map((r) => h('option', { value: r.name }, r.name)));
  const fileName = h('input', { value: 'main.sh', required: true });
  const code = h('textarea', { spellcheck: 'false' }, 'echo "hello from corral"\n');
  const entry = h('input', { placeholder: "the runtime's default" });
  const stdin = h('textarea', { style: 'min-height:3rem' });
  const result = h('div', { 'aria-live': 'polite' });
  const history = h('tbody');

  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    render(result, h('p', { class: 'muted' }, 'Running…'));
    try {
      const job = await api('POST', '/jobs', {
        runtime: runtime.value,
        files: { [fileName.value]: code.value },
        ...(entry.value && { entry: entry.value }),
        ...(stdin.value && { stdin: stdin.value }),
      });
      showResult(result, job);
      void loadHistory();
    } catch (err) {
      render(result, h('p', { class: 'error' }, err.message));
    }
  } },
    h('div', { class: 'row' }, h('div', {}, field('Runtime', runtime)), h('div', {}, field('File name', fileName)), h('div', {}, field('Entry command', entry))),
    field('Code', code),
    field('Standard input', stdin),
    h('p', {}, h('button', { type: 'submit', class: 'primary' }, 'Run')));

  async function loadHistory() {
    const { jobs } = await api('GET', '/jobs?limit=20').catch(() => ({ jobs: [] }));
    render(history, jobs.map((j) => h('tr', {}, h('td', {}, j.runtime), h('td', {}, j.status ?? j.state), h('td', {}, String(j.exitCode ?? '–')),
      h('td', {}, new Date(j.createdAt).toLocaleString()),
      h('td', {}, h('button', { type: 'button', onclick: async () => showResult(result, await api('GET', `/jobs/${j.id}`)) }, 'Show')))));
  }
  render(main, h('h1', {}, 'Run a job'), runtimes.length ? form : h('p', { class: 'muted' }, 'No runtimes are configured on this server.'), result,
    h('h2', {}, 'Recent jobs'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Runtime', 'Status', 'Exit', 'When', ''].map((t) => h('th', { scope: 'col' }, t)))), history));
  await loadHistory();
}

function showResult(box, job) {
  render(box, h('div', { class: 'card', style: 'margin-top:1rem' },
    h('p', {}, h('strong', {}, 'Status: '), job.status ?? job.state, ' · exit ', String(job.exitCode ?? '–'),
      job.wallMs != null ? ` · ${Math.round(job.wallMs)} ms` : ''),
    h('h2', {}, 'stdout'), h('pre', { class: 'log' }, job.stdout || ' '),
    job.stderr ? [h('h2', {}, 'stderr'), h('pre', { class: 'log stderr' }, job.stderr)] : null));
  if (job.stdoutTruncated || job.stderrTruncated) flash('output was truncated', 'error');
}
