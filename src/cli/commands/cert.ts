/**
 * `corral cert`: a self-signed TLS key and certificate for local HTTPS, made with the
 * system's `openssl` (ECDSA P-256, valid for the host name, localhost and 127.0.0.1).
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { jsonOption } from '../command.js';
import { CliError, print, runAction } from '../output.js';
import { parseCount } from '../parse.js';

interface CertFlags {
  out: string;
  host: string;
  days: number;
  force?: boolean;
  json?: boolean;
}

export function registerCertCommand(program: Command): void {
  jsonOption(program.command('cert'))
    .description('write a self-signed TLS key and certificate for local use (needs openssl)')
    .option('-o, --out <dir>', 'directory to write key.pem and cert.pem into', '.')
    .option('--host <name>', 'host name the certificate is for (localhost and 127.0.0.1 are always included)', 'localhost')
    .option('--days <n>', 'validity in days', (v) => parseCount(v, '--days'), 365)
    .option('-f, --force', 'overwrite existing files')
    .action(runAction.wrap(writeCert));
}

async function writeCert(flags: CertFlags): Promise<void> {
  if (!/^[A-Za-z0-9.:*-]{1,253}$/.test(flags.host)) throw new CliError('bad_input', `--host "${flags.host}" is not a host name or address`);
  await mkdir(flags.out, { recursive: true });
  const key = path.resolve(flags.out, 'key.pem');
  const cert = path.resolve(flags.out, 'cert.pem');
  if (!flags.force) {
    for (const f of [key, cert]) {
      if (await stat(f).then(() => true, () => false)) throw new CliError('file_exists', `${f} exists; pass --force to overwrite`);
    }
  }
  // The key file is created 0600 before openssl writes into it, so it is never readable by others.
  await (await open(key, 'w', 0o600)).close();
  await chmod(key, 0o600);
  const names = new Set([flags.host, 'localhost', '127.0.0.1', '::1']);
  const san = [...names].map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', String(flags.days),
    '-subj', `/CN=${flags.host}`, '-addext', `subjectAltName=${san}`,
  ]);
  print(!!flags.json, { key, cert, host: flags.host, days: flags.days }, () =>
    `wrote ${key} (mode 0600) and ${cert} for ${flags.host}\nserve HTTPS with: corral serve --tls-cert ${cert} --tls-key ${key}\n` +
      `clients must accept the self-signed certificate: corral login -k https://${flags.host}:8080`,
  );
}

function openssl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('openssl', args, { timeout: 30_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(new CliError('openssl_failed', missing ? 'openssl is not installed (apt-get install openssl)' : `openssl failed: ${stderr.trim() || err.message}`));
    }),
  );
}
