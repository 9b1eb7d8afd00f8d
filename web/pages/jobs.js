// Run a job from a small editor and see its output. The file name and a sample program follow
// the runtime (its entry file), so every runtime's defaults run as shipped.
import { api } from '../lib/api.js';
import { field, flash, h, render } from '../lib/dom.js';

/** A sample program per entry-file extension: what a runtime's default command runs. */
const SAMPLES = {
  sh: 'echo "hello from corral"\n',
  py: 'print("hello from corral")\n',
  js: 'console.log("hello from corral");\n',
  rb: 'puts "hello from corral"\n',
  tex: '\\documentclass{article}\n\\begin{document}\nhello from corral\n\\end{document}\n',
  c: '#include <stdio.h>\n\nint main(void) {\n  puts("hello from corral");\n  return 0;\n}\n',
  cpp: '#include <iostream>\n\nint main() {\n  std::cout << "hello from corral" << std::endl;\n}\n',
  java: 'public class Main {\n  public static void main(String[] args) {\n    System.out.println("hello from corral");\n  }\n}\n',
};
SAMPLES.cc = SAMPLES.cxx = SAMPLES.cpp;
const PREFERRED = ['python', 'sh', 'node', 'ruby'];

const extOf = (file) => (/\.([a-z0-9]+)$/i.exec(file ?? '')?.[1] ?? '').toLowerCase();

/** The file name and sample a runtime starts with: its entry file, else main.<ext> of its command. */
export function jobDefaults(runtime) {
  const file = runtime?.entryFile ?? /\bmain\.[a-z0-9]+\b/i.exec(runtime?.command ?? '')?.[0] ?? 'main.sh';
  return { file, code: SAMPLES[extOf(file)] ?? '' };
}

export async function jobsPage(main) {
  const { runtimes } = await api('GET', '/runtimes').catch(() => ({ runtimes: [] }));
  const first = PREFERRED.map((n) => runtimes.find((r) => r.name === n)).find(Boolean) ?? runtimes[0];
  const runtime = h('select', { name: 'runtime' }, runtimes.map((r) => h('option', { value: r.name, selected: r === first }, r.version ? `${r.name} (${r.version})` : r.name)));
  let shown = jobDefaults(first);
  const fileName = h('input', { value: shown.file, required: true });
  const code = h('textarea', { spellcheck: 'false' }, shown.code);
  const entry = h('input', { placeholder: first ? first.command : "the runtime's default" });
  const stdin = h('textarea', { style: 'min-height:3rem' });
  const result = h('div', { 'aria-live': 'polite' });
  const history = h('tbody');

  // A new runtime brings its file name and sample, unless the user changed them.
  runtime.addEventListener('change', () => {
    const r = runtimes.find((x) => x.name === runtime.value);
    const next = jobDefaults(r);
    if (fileName.value === shown.file) fileName.value = next.file;
    if (code.value === shown.code) code.value = next.code;
    entry.placeholder = r?.command ?? '';
    shown = next;
  });

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
  render(box, h('div', { class: 'card job-result', style: 'margin-top:1rem' },
    h('p', {}, h('strong', {}, 'Status: '), h('span', { class: 'job-status' }, job.status ?? job.state), ' · exit ', String(job.exitCode ?? '–'),
      job.wallMs != null ? ` · ${Math.round(job.wallMs)} ms` : ''),
    h('h2', {}, 'stdout'), h('pre', { class: 'log job-stdout' }, job.stdout || ' '),
    job.stderr ? [h('h2', {}, 'stderr'), h('pre', { class: 'log stderr job-stderr' }, job.stderr)] : null));
  if (job.stdoutTruncated || job.stderrTruncated) flash('output was truncated', 'error');
}
