/** Asking the person at the terminal: a line, or a secret without echo; or reading stdin. */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { CliError } from './output.js';

export const stdinIsTty = (): boolean => !!process.stdin.isTTY;

/** Asks one question on stderr (stdout stays clean for --json) and returns the answer. */
export function ask(question: string, opts: { secret?: boolean; default?: string } = {}): Promise<string> {
  if (!stdinIsTty()) {
    return Promise.reject(new CliError('no_tty', `cannot ask "${question}" without a terminal: pass it as a flag or use --password-stdin`));
  }
  // While the secret is typed nothing is echoed: the prompt is written directly to stderr.
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  const label = opts.default ? `${question} [${opts.default}]: ` : `${question}: `;
  return new Promise<string>((resolve, reject) => {
    rl.question(label, (answer) => {
      rl.close();
      if (opts.secret) process.stderr.write('\n');
      resolve(answer || opts.default || '');
    });
    muted = !!opts.secret;
    rl.once('SIGINT', () => {
      rl.close();
      process.stderr.write('\n');
      reject(new CliError('interrupted', 'interrupted'));
    });
  });
}

/** Asks for a new password twice and checks both match. */
export async function askNewPassword(label = 'New password'): Promise<string> {
  const first = await ask(label, { secret: true });
  const again = await ask(`${label} (again)`, { secret: true });
  if (first !== again) throw new CliError('password_mismatch', 'the two passwords differ');
  return first;
}

/** The lines on standard input (for --password-stdin), without their line endings. */
export async function readStdinLines(): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text.split(/\r?\n/).filter((line, i, all) => line !== '' || i < all.length - 1);
}

/** The first `n` lines of stdin, failing clearly when fewer were given. */
export async function readStdinSecrets(n: number, what: string): Promise<string[]> {
  const lines = (await readStdinLines()).slice(0, n);
  if (lines.length < n || lines.some((l) => !l)) throw new CliError('bad_input', `--password-stdin expects ${what} on standard input`);
  return lines;
}
