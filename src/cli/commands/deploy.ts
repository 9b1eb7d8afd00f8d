/**
 * `corral deploy DIR --process web`: packs a local directory holding a Procfile as tar.gz,
 * uploads it (multipart, with a progress bar on stderr) as a new instance and follows the
 * instance until it runs — or fails, with the reason.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import * as tar from 'tar';
import { Agent, request } from 'undici';
import type { Instance } from '../../core/instances/spec.js';
import type { ApiClient } from '../client.js';
import { apiAction, apiCommand } from '../command.js';
import { CliError } from '../output.js';
import { specFromFlags, withSpecOptions } from './instance.js';

const POLL_MS = 300;

async function pack(dir: string, into: string): Promise<string> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new CliError('bad_argument', `${dir} is not a directory`);
  const file = path.join(into, 'source.tar.gz');
  await tar.c({ gzip: true, cwd: dir, file, portable: true }, ['.']);
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

/** POSTs the spec and the archive as multipart/form-data, streaming the file. */
async function upload(client: ApiClient, spec: unknown, file: string, insecure: boolean): Promise<Instance> {
  const boundary = `corral-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="spec"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(spec)}\r\n` +
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
  const dispatcher = insecure ? new Agent({ connect: { rejectUnauthorized: false } }) : undefined;
  const res = await request(`${client.url}/api/v1/instances`, {
    method: 'POST',
    headers: {
      ...client.headers(),
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + size + tail.length),
    },
    body: Readable.from(body()),
    ...(dispatcher && { dispatcher }),
  }).catch((e: Error) => {
    throw new CliError('unreachable', `cannot reach ${client.url}: ${e.message}`);
  });
  const reply = (await res.body.json().catch(() => ({}))) as Instance & { error?: { code: string; message: string } };
  if (res.statusCode >= 400) throw new CliError(reply.error?.code ?? `http_${res.statusCode}`, reply.error?.message ?? `HTTP ${res.statusCode}`);
  return reply;
}

/** Prints each state change on stderr until the instance runs (or fails). */
async function followUntilRunning(client: ApiClient, id: string, timeoutMs: number): Promise<Instance> {
  const until = Date.now() + timeoutMs;
  let seen = '';
  for (;;) {
    const i = await client.get<Instance>(`/instances/${id}`);
    if (i.state !== seen) process.stderr.write(`${i.name}: ${(seen = i.state)}\n`);
    if (i.state === 'running') return i;
    if (['failed', 'exited', 'backoff', 'stopped'].includes(i.state)) {
      throw new CliError('deploy_failed', `${i.name} is ${i.state}${i.lastError ? `: ${i.lastError}` : ''}`);
    }
    if (Date.now() > until) throw new CliError('deploy_timeout', `${i.name} is still ${i.state}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export function registerDeployCommand(program: Command): void {
  withSpecOptions(apiCommand(program, 'deploy <dir>', 'upload a directory with a Procfile and run one of its processes'))
    .option('--process <type>', 'Procfile process type', 'web')
    .option('--name <name>', 'instance name (default: the directory name)')
    .option('--timeout <seconds>', 'how long to wait for it to run', '120')
    .action(
      apiAction(async ({ client, out }, dir: string, flags: Parameters<typeof specFromFlags>[1] & { name?: string; timeout: string; insecure?: boolean }) => {
        const name = flags.name ?? path.basename(path.resolve(dir)).toLowerCase().replace(/[^a-z0-9-]/g, '-');
        const spec = specFromFlags(name, flags);
        const tmp = await mkdtemp(path.join(tmpdir(), 'corral-deploy-'));
        try {
          const file = await pack(dir, tmp);
          const created = await upload(client, spec, file, !!flags.insecure);
          const running = await followUntilRunning(client, created.id, Number(flags.timeout) * 1000);
          const ports = running.ports.map((p) => `${p.name}=127.0.0.1:${p.hostPort}`).join(' ');
          out(running, () => `${running.name} is running${ports ? ` (${ports})` : ''}; id ${running.id}`);
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
      }),
    );
}
