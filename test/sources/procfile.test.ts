import { describe, expect, it } from 'vitest';
import { commandFor, parseProcfile, processEnv } from '../../src/core/sources/procfile.js';

describe('parseProcfile', () => {
  it('reads types, commands, comments and blank lines', () => {
    const procfile = parseProcfile('# the app\n\nweb: python -m http.server $PORT\n  worker:./bin/worker --queue a  \r\n');
    expect(procfile).toEqual([
      { type: 'web', env: {}, command: 'python -m http.server $PORT', line: 3 },
      { type: 'worker', env: {}, command: './bin/worker --queue a', line: 4 },
    ]);
  });

  it('reads the env prefix, quoted values included', () => {
    const [entry] = parseProcfile(`web: env A=1 B="two words" C='x=y' D= python app.py --a=b`);
    expect(entry).toEqual({ type: 'web', env: { A: '1', B: 'two words', C: 'x=y', D: '' }, command: 'python app.py --a=b', line: 1 });
  });

  it('keeps a command that only looks like env as the command', () => {
    expect(parseProcfile('a: env\nb: env | sort\nc: env A=1').map((e) => [e.command, e.env])).toEqual([
      ['env', {}],
      ['env | sort', {}],
      ['env A=1', {}],
    ]);
  });

  it('joins continued lines, keeping the first line number for later entries', () => {
    const procfile = parseProcfile('web: env A=1 \\\n  python app.py \\\n  --verbose\nworker: run\\\nner\nlast: tail \\');
    expect(procfile).toEqual([
      { type: 'web', env: { A: '1' }, command: 'python app.py   --verbose', line: 1 },
      { type: 'worker', env: {}, command: 'runner', line: 4 },
      { type: 'last', env: {}, command: 'tail', line: 6 },
    ]);
  });

  it('refuses a duplicate type, naming both lines', () => {
    expect(() => parseProcfile('web: a\n\n# c\nweb: b')).toThrowError(
      expect.objectContaining({ code: 'procfile_invalid', message: 'Procfile line 4: duplicate process type "web" (first on line 1)', details: { line: 4 } }),
    );
  });

  it('counts continued lines when numbering a later error', () => {
    expect(() => parseProcfile('web: a \\\n b \\\n c\nweb: d')).toThrowError(/line 4: duplicate process type "web" \(first on line 1\)/);
  });

  it.each([
    ['we b: x', /line 1: invalid process type "we b"/],
    ['ok: x\n: x', /line 2: invalid process type ""/],
    ['ok: x\nw€b: x', /line 2: invalid process type "w€b"/],
    [`${'a'.repeat(64)}: x`, /line 1: invalid process type/],
    ['just a command', /line 1: expected "type: command"/],
    ['web:   ', /line 1: no command for process type "web"/],
    ['web: env A=1 A=2 run', /line 1: duplicate variable "A"/],
  ])('refuses %j', (text, message) => {
    expect(() => parseProcfile(text)).toThrowError(message);
  });

  it('an empty Procfile has no entries', () => {
    expect(parseProcfile('\n# nothing\n')).toEqual([]);
  });
});

describe('commandFor and processEnv', () => {
  const procfile = parseProcfile('web: env MODE=web PORT=9 serve\nworker: work');

  it('finds a type', () => {
    expect(commandFor(procfile, 'worker').command).toBe('work');
  });

  it('an unknown type lists the known ones', () => {
    expect(() => commandFor(procfile, 'clock')).toThrowError(
      expect.objectContaining({ code: 'unknown_process_type', details: { known: ['web', 'worker'] } }),
    );
  });

  it('env order: base, then the request, then the Procfile line', () => {
    const env = processEnv({ PATH: '/bin', MODE: 'base', PORT: '1', KEEP: 'b' }, { MODE: 'request', EXTRA: 'r', PORT: '2' }, commandFor(procfile, 'web'));
    expect(env).toEqual({ PATH: '/bin', MODE: 'web', PORT: '9', KEEP: 'b', EXTRA: 'r' });
  });
});
