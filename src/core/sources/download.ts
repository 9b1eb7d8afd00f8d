/**
 * Downloads a source archive over http or https into a file, under the address policy:
 *
 * - every connection goes through a connector that checks the address it connects to —
 *   an IP literal before connecting, a host name's resolved addresses inside the connect
 *   itself (only permitted ones are tried), and the socket's remote address once connected
 *   — so a name that resolves (or re-resolves, DNS rebinding) to a refused address fails;
 * - redirects are followed by hand, at most `maxRedirects`, each hop through the same
 *   connector and limited to http and https;
 * - the answer must be 200 with an archive-like content type (or none); the body is
 *   streamed to the file and cut off past `maxBytes`; one timeout covers the whole download.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import net, { type LookupFunction } from 'node:net';
import tls from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { CorralError, errors, isCorralError } from '../errors.js';
import type { AddressPolicy } from './address-policy.js';
import { archiveTooLarge, writeCappedFile } from './capped-file.js';

/** Resolves a host name to its addresses (dns.lookup by default; tests inject their own). */
export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export interface DownloadOptions {
  url: string;
  /** File to write the body to; must not exist. Removed again if writing it fails. */
  to: string;
  policy: AddressPolicy;
  maxBytes: number;
  /** Time limit of the whole download, redirects included. */
  timeoutMs: number;
  maxRedirects?: number;
  signal?: AbortSignal;
  resolve?: Resolver;
  /** Extra CA certificates (PEM) to trust for https, beside the system's. */
  ca?: string;
}

export interface Downloaded {
  /** The URL the archive came from, after redirects. */
  url: string;
  bytes: number;
  contentType: string | undefined;
}

/** Content types an archive may be served with; its real format is sniffed from its bytes. */
const ARCHIVE_TYPES = new Set([
  'application/zip',
  'application/x-zip-compressed',
  'application/x-gtar',
  'application/x-tar',
  'application/gzip',
  'application/x-gzip',
  'application/x-compressed-tar',
  'application/octet-stream',
]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export async function download(opts: DownloadOptions): Promise<Downloaded> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  const agent = new Agent({ connect: guardedConnector(opts, opts.resolve ?? systemResolver) });
  let url = sourceUrl(opts.url);
  try {
    for (let redirects = 0; ; redirects++) {
      const res = await agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { accept: [...ARCHIVE_TYPES].join(', ') },
        signal,
      });
      if (REDIRECTS.has(res.statusCode)) {
        await res.body.dump();
        const location = res.headers.location;
        if (typeof location !== 'string') throw errors.downloadFailed(`${shown(url)} answered HTTP ${res.statusCode} without a Location`);
        if (redirects >= (opts.maxRedirects ?? 5)) throw errors.downloadFailed(`too many redirects, the last from ${shown(url)}`);
        url = sourceUrl(new URL(location, url).href);
        continue;
      }
      return await saveBody(res, url, opts);
    }
  } catch (e) {
    throw failure(e, url, opts, timeout);
  } finally {
    agent.destroy().catch(() => {});
  }
}

/** Parses a source URL: http and https only. */
export function sourceUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw errors.sourceRefused(`${JSON.stringify(text.slice(0, 200))} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw errors.sourceRefused(`only http and https sources can be downloaded, not ${url.protocol}`);
  }
  return url;
}

async function saveBody(res: Dispatcher.ResponseData, url: URL, opts: DownloadOptions): Promise<Downloaded> {
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw errors.downloadFailed(`${shown(url)} answered HTTP ${res.statusCode}, expected 200`);
  }
  const contentType = header(res, 'content-type')?.split(';')[0]!.trim().toLowerCase() || undefined;
  if (contentType && !ARCHIVE_TYPES.has(contentType)) {
    await res.body.dump();
    throw errors.downloadFailed(`${shown(url)} sent content type ${contentType}, not an archive (zip, tar, tar.gz)`);
  }
  const length = Number(header(res, 'content-length'));
  if (length > opts.maxBytes) throw archiveTooLarge(opts.maxBytes);
  const bytes = await writeCappedFile(opts.to, res.body as AsyncIterable<Buffer>, opts.maxBytes);
  return { url: url.href, bytes, contentType };
}

/** A connector that only ever connects to addresses the policy permits. */
function guardedConnector(opts: DownloadOptions, resolve: Resolver): buildConnector.connector {
  const { policy } = opts;
  const ca = opts.ca && [...tls.rootCertificates, opts.ca];
  const connect = buildConnector({ timeout: opts.timeoutMs, lookup: guardedLookup(policy, resolve), ...(ca && { ca }) });
  return (options, callback) => {
    const host = options.hostname;
    if (net.isIP(host) && !policy.permits(host)) return callback(refusal(policy, host), null);
    connect(options, (err, socket) => {
      if (err) return callback(err, null);
      // The address really connected to: whatever resolved it, this is what counts.
      const remote = socket!.remoteAddress ?? '';
      if (!policy.permits(remote)) {
        socket!.destroy();
        return callback(refusal(policy, remote, host), null);
      }
      callback(null, socket!);
    });
  };
}

/** net.connect's lookup: resolves, then hands net only the permitted addresses. */
function guardedLookup(policy: AddressPolicy, resolve: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (found) => {
        const permitted = found.filter((a) => policy.permits(a.address));
        const first = permitted[0];
        if (!first) {
          const err = found[0] ? refusal(policy, found[0].address, hostname) : errors.downloadFailed(`${hostname} has no address`);
          return callback(err, '', 0);
        }
        if (options.all) callback(null, permitted);
        else callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(errors.downloadFailed(`cannot resolve ${hostname}: ${err.code ?? err.message}`), '', 0),
    );
  };
}

function refusal(policy: AddressPolicy, address: string, host?: string): CorralError {
  try {
    policy.check(address, host);
  } catch (e) {
    if (isCorralError(e)) return e;
  }
  return errors.sourceRefused(`refusing to download from ${host ?? address}`);
}

/** Any failure as a corral error: refusals and caps as they are, the rest as download_failed. */
function failure(e: unknown, url: URL, opts: DownloadOptions, timeout: AbortSignal): CorralError {
  if (isCorralError(e)) return e;
  const cause = (e as { cause?: unknown }).cause;
  if (isCorralError(cause)) return cause;
  if (timeout.aborted) return errors.downloadFailed(`download from ${shown(url)} timed out after ${opts.timeoutMs / 1000} s`);
  if (opts.signal?.aborted) return errors.downloadFailed(`download from ${shown(url)} was cancelled`);
  const err = e as NodeJS.ErrnoException;
  return errors.downloadFailed(`download from ${shown(url)} failed: ${err.code ? `${err.code} ` : ''}${err.message}`);
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A URL as shown in messages: no credentials, no query (it may hold a token). */
const shown = (url: URL) => `${url.origin}${url.pathname}`;
