/**
 * `corral deploy DIR [--name N]`: packs a local directory holding a Procfile as tar.gz
 * (leaving out `.git`, `node_modules` and what `.corralignore` names), uploads it (with a
 * progress bar on stderr) as a new release of the app — created on its first deploy — and
 * waits until the release serves. When it does not, prints why: the state (e.g.
 * crash-looping with backoff), the exit code and the last log lines; the previous release
 * keeps serving.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import type { DeployOptions, DeployResult } from '../../core/apps/spec.js';
import type { ApiClient } from '../client.js';
import { apiAction, apiCommand } from '../command.js';
import { ignoreFor } from '../ignore.js';
import { unitOption } from '../flags.js';
import { CliError } from '../output.js';
import { specFromFlags, withSpecOptions } from './instance.js';

/** Packs `dir` into `into`/source.tar.gz without what the ignore rules leave out. */
export async function pack(dir: string, into: string): Promise<string> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new CliError('bad_argument', `${dir} is not a directory`);
  const ignored = await ignoreFor(dir);
  const tar = await import('tar');
  const file = path.join(into, 'source.tar.gz');
  await tar.c(
    { gzip: true, cwd: dir, file, portable: true, filter: (p, s) => !ignored(p.replace(/^\.\/?/, ''), 'isDirectory' in s && s.isDirectory()) },
    ['.'],
  );
  return file;
}

/** A progress bar on stderr, redrawn at most every 100 ms: `[#####.....]  52% 1.2/2.3 MB`. */
function progress(total: number): (sent: number) => void {
  let last = 0;
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return (sent) => {
    const now = Date.now();
    if (now - last < 100 && sent < total) return;
    last = now;
    const frac = total ? sent / total : 1;
    const bar = '#'.repeat(Math.round(frac * 30)).padEnd(30, '.');
    process.stderr.write(`\ruploading [${bar}] ${Math.round(frac * 100)}% ${mb(sent)}/${mb(total)} MB`);
    if (sent >= total) process.stderr.write('\n');
  };
}

interface FailedReply {
  error?: { code: string; message: string; state?: string; exitCode?: number | null; exitSignal?: string | null; logs?: string[] };
}

/** POSTs the options and the archive as multipart/form-data, streaming the file. */
async function upload(client: ApiClient, app: string, options: DeployOptions, file: string, insecure: boolean): Promise<DeployResult> {
  const boundary = `corral-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="options"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(options)}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="archive"; filename="source.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const size = (await stat(file)).size;
  const show = progress(size);
  async function* body() {
    yield head;
    let sent = 0;
    for await (const chunk of createReadStream(file)) {
      sent += (chunk as Buffer).length;
      show(sent);
      yield chunk as Buffer;
    }
    if (!size) show(0);
    yield tail;
  }
  const { Agent, request } = await import('undici');
  const dispatcher = insecure ? new Agent({ connect: { rejectUnauthorized: false } }) : undefined;
  const res = await request(`${client.url}/api/v1/apps/${encodeURIComponent(app)}/releases`, {
    method: 'POST',
    headers: {
      ...client.headers(),
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + size + tail.length),
    },
    body: Readable.from(body()),
    // A deploy answers once the release serves (or failed): as long as the app takes to get ready.
    headersTimeout: 0,
    bodyTimeout: 0,
    ...(dispatcher && { dispatcher }),
  }).catch((e: Error) => {
    throw new CliError('unreachable', `cannot reach ${client.url}: ${e.message}`);
  });
  const reply = (await res.body.json().catch(() => ({}))) as DeployResult & FailedReply;
  if (res.statusCode >= 400) {
    const e = reply.error;
    if (e?.code === 'deploy_failed') printFailure(e);
    throw new CliError(e?.code ?? `http_${res.statusCode}`, e?.message ?? `HTTP ${res.statusCode}`);
  }
  return reply;
}

/** The state, the exit and the last log lines of what did not start, on stderr. */
export function printFailure(e: NonNullable<FailedReply['error']>): void {
  const lines = [`state:     ${e.state ?? 'unknown'}`];
  if (e.exitCode !== undefined && e.exitCode !== null) lines.push(`exit code: ${e.exitCode}`);
  if (e.exitSignal) lines.push(`signal:    ${e.exitSignal}`);
  if (e.logs?.length) lines.push(`last ${e.logs.length} log lines:`, ...e.logs.map((l) => `  ${l}`));
  else lines.push('no log lines');
  process.stderr.write(`${lines.join('\n')}\n`);
}

/** "myapp v3 is serving: web=2 worker=1 at //myapp--alice.localhost/". */
export function describeResult(r: DeployResult): string {
  const formation = Object.entries(r.app.formation)
    .map(([t, n]) => `${t}=${n}`)
    .join(' ');
  return `${r.app.name} v${r.release.version} is serving (${formation}) at ${r.app.url}`;
}

type DeployFlags = Parameters<typeof specFromFlags>[1] & {
  name?: string;
  message?: string;
  healthPath?: string;
  readyTimeout?: number;
  drain?: number;
  insecure?: boolean;
};

/** The deploy's options from the flags shared with `instance create`. */
function optionsFromFlags(flags: DeployFlags, name: string): DeployOptions {
  const spec = specFromFlags(name, flags);
  const settings: NonNullable<DeployOptions['settings']> = {};
  if (spec.limits) settings.limits = spec.limits;
  if (spec.restart) settings.restart = spec.restart;
  if (spec.stopSignal) settings.stopSignal = spec.stopSignal;
  if (spec.stopGraceSeconds !== undefined) settings.stopGraceSeconds = spec.stopGraceSeconds;
  if (spec.driver) settings.driver = spec.driver;
  if (spec.image) settings.image = spec.image;
  if (flags.healthPath || flags.readyTimeout !== undefined) {
    settings.health = {
      ...(flags.healthPath && { path: flags.healthPath }),
      ...(flags.readyTimeout !== undefined && { timeoutSeconds: flags.readyTimeout }),
    };
  }
  if (flags.drain !== undefined) settings.drainSeconds = flags.drain;
  if (spec.ports?.some((p) => p.name !== 'web')) throw new CliError('bad_option', 'an app\'s web process gets the port "web" (PORT); other ports are not supported');
  return {
    ...(flags.message && { description: flags.message }),
    ...(flags.process && { process: flags.process }),
    ...(spec.env && { env: spec.env }),
    ...(Object.keys(settings).length && { settings }),
  };
}

export function registerDeployCommand(program: Command): void {
  withSpecOptions(apiCommand(program, 'deploy <dir>', 'deploy a directory with a Procfile as a new release of an app (created on its first deploy)'), {
    prefix: 'settings.',
  })
    .option('--process <type>', 'first deploy: the process type that runs (default web, else the Procfile\'s first)')
    .option('--name <name>', 'app name (default: the directory name)')
    .option('-m, --message <text>', 'description of the release')
    .option('--health-path <path>', 'a new release is ready when GET path answers 2xx/3xx (default: its port accepts connections)')
    .addOption(unitOption('--ready-timeout <duration>', "a new release not ready by then has failed (default: the server's)", 'seconds', 'settings.health.timeoutSeconds'))
    .addOption(unitOption('--drain <duration>', 'old copies finish in-flight requests this long before they stop', 'seconds', 'settings.drainSeconds'))
    .action(
      apiAction(async ({ client, out }, dir: string, flags: DeployFlags) => {
        const name = flags.name ?? path.basename(path.resolve(dir)).toLowerCase().replace(/[^a-z0-9-]/g, '-');
        const options = optionsFromFlags(flags, name);
        const tmp = await mkdtemp(path.join(tmpdir(), 'corral-deploy-'));
        try {
          const file = await pack(dir, tmp);
          process.stderr.write(`deploying ${name}…\n`);
          const result = await upload(client, name, options, file, !!flags.insecure);
          out(result, () => describeResult(result));
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
      }),
    );
}
