/** Sizes and durations on the command line (src/cli/units.ts) and the server's refusals told in flag terms (src/cli/flags.ts). */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { inFlagTerms, typedFlag, unitOption } from '../../src/cli/flags.js';
import { CliError } from '../../src/cli/output.js';
import { formatDuration, formatSize, parseDuration, parseSize, parseWholeSeconds } from '../../src/cli/units.js';

const M = 1024 ** 2;

describe('sizes', () => {
  it.each([
    ['4194304', 4 * M],
    ['4M', 4 * M],
    ['100M', 100 * M],
    ['100MiB', 100 * M],
    ['100mb', 100 * M],
    ['1G', 1024 * M],
    ['1.5G', 1536 * M],
    ['512k', 512 * 1024],
    ['2T', 2 * 1024 ** 4],
    ['10b', 10],
  ])('%s is %d bytes', (text, bytes) => expect(parseSize(text, '-m')).toBe(bytes));

  it.each(['', 'M', '100X', '-4M', '1e6', 'lots', '4 GB GB'])('refuses %j naming the flag', (text) => {
    expect(() => parseSize(text, '-m')).toThrow(new CliError('bad_input', `-m: "${text}" is not a size; e.g. 512M, 2G (K/M/G = KiB/MiB/GiB; a bare number is bytes)`));
  });

  it('prints sizes short', () => {
    expect([4 * M, 1536 * M, 1024 ** 3, 1000, 512 * 1024].map(formatSize)).toEqual(['4M', '1.5G', '1G', '1000', '512K']);
  });
});

describe('durations', () => {
  it.each([
    ['90', 90],
    ['2s', 2],
    ['500ms', 0.5],
    ['5m', 300],
    ['12h', 43200],
    ['30d', 2592000],
    ['1w', 604800],
    ['1.5h', 5400],
  ])('%s is %d s', (text, seconds) => expect(parseDuration(text, '--timeout')).toBe(seconds));

  it.each(['', 's', '5 minutes', '-2s', '2y'])('refuses %j naming the flag', (text) => {
    expect(() => parseDuration(text, '--timeout')).toThrow(/^--timeout: ".*" is not a duration; e\.g\. 500ms/);
  });

  it('whole seconds where the API takes whole seconds', () => {
    expect(parseWholeSeconds('30d', '--ttl')).toBe(2592000);
    expect(() => parseWholeSeconds('1500ms', '--ttl')).toThrow('--ttl: whole seconds only, got "1500ms"');
  });

  it('prints durations in the largest unit that divides them', () => {
    expect([60, 3600, 2592000, 90, 0.5, 604800].map(formatDuration)).toEqual(['1m', '1h', '30d', '90s', '500ms', '1w']);
  });
});

describe('options with units', () => {
  const command = () => {
    const cmd = new Command('create').exitOverride();
    cmd.addOption(unitOption('-m, --memory <size>', 'memory limit', 'size', 'limits.memoryBytes'));
    cmd.addOption(unitOption('--stop-grace <duration>', 'grace', 'seconds', 'stopGraceSeconds'));
    cmd.addOption(unitOption('--cpus <n>', 'cpus', 'number', 'limits.cpus'));
    return cmd;
  };

  it('parse to numbers, and a bad value names the spelling typed', () => {
    expect(command().parse(['-m', '100M', '--stop-grace', '2m'], { from: 'user' }).opts()).toEqual({ memory: 100 * M, stopGrace: 120 });
    const argv = ['node', 'corral', 'create', '--memory', '1X'];
    const cmd = command();
    const memory = cmd.options[0]!;
    expect(typedFlag(memory, argv)).toBe('--memory');
    expect(typedFlag(memory, ['node', 'corral', 'create', '-m1X'])).toBe('-m');
    expect(typedFlag(memory, ['node', 'corral', 'create', '--memory=1X'])).toBe('--memory');
  });

  it("turn the server's refusal of their field into the flag's terms", () => {
    const cmd = command();
    const refused = (message: string) => inFlagTerms(new CliError('validation_failed', message), cmd);
    // The flag as typed is read from process.argv; neither spelling is on this one, so: the long one.
    expect(refused('body.limits.memoryBytes: must be >= 4194304')).toEqual(new CliError('bad_input', '--memory: at least 4M'));
    expect(refused('body.stopGraceSeconds: must be <= 3600')).toEqual(new CliError('bad_input', '--stop-grace: at most 1h'));
    expect(refused('body.limits.cpus: must be <= 256')).toEqual(new CliError('bad_input', '--cpus: at most 256'));
    expect(refused('options.limits.memoryBytes: Expected integer to be greater or equal to 4194304')).toEqual(new CliError('bad_input', '--memory: at least 4M'));
    // A field no flag filled, and other errors, stay as the server said them.
    expect(refused('body.name: must match pattern "^[a-z]"')).toEqual(new CliError('validation_failed', 'body.name: must match pattern "^[a-z]"'));
    const other = new CliError('quota_exceeded', 'body.limits.memoryBytes: too much');
    expect(inFlagTerms(other, cmd)).toBe(other);
  });
});
