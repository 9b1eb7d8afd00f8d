/**
 * The Docker Engine client: how corral reaches the engine (unix socket, or DOCKER_HOST), asks
 * whether it answers, and makes sure an image is there (pulling it, with progress, when a
 * registry is reachable). Shared by the docker driver, its job runner and the swarm driver.
 */
import Docker from 'dockerode';
import { errors } from '../../core/errors.js';

export type Engine = Docker;

export const DEFAULT_SOCKET = '/var/run/docker.sock';

/** Where the engine listens: a `unix://` or `tcp://` address; default DOCKER_HOST, then the usual socket. */
export function engineAddress(host?: string): string {
  return host || process.env.DOCKER_HOST || `unix://${DEFAULT_SOCKET}`;
}

/** A client for the engine at `host` (see engineAddress). Nothing is sent until it is used. */
export function connectEngine(host?: string): Engine {
  const address = engineAddress(host);
  if (address.startsWith('unix://')) return new Docker({ socketPath: address.slice('unix://'.length) });
  const url = new URL(address.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
}

/** The engine's version, or an error saying why it does not answer (within `timeoutMs`). */
export async function engineVersion(engine: Engine, timeoutMs = 3000): Promise<string> {
  const v = await withTimeout(engine.version(), timeoutMs, 'the Docker engine did not answer');
  return v.Version;
}

/** The HTTP status of a failed engine call (dockerode puts it on the error). */
export const statusOf = (e: unknown): number | undefined => (e as { statusCode?: number }).statusCode;

/** The engine's own message of a failed call, without dockerode's "(HTTP code 404) …" prefix. */
export function engineMessage(e: unknown): string {
  const json = (e as { json?: { message?: string } }).json;
  return json?.message ?? (e as Error).message;
}

/** One line of pull progress, e.g. "sha256:ab12: Downloading 12.1MB/40MB". */
export type PullProgress = (line: string) => void;

/**
 * Makes sure `ref` is on the engine. A missing image is pulled when `pull` is true; an image
 * that is missing and cannot be pulled is an `image_missing` error naming it.
 */
export async function ensureImage(engine: Engine, ref: string, opts: { pull: boolean; onProgress?: PullProgress }): Promise<void> {
  if (await hasImage(engine, ref)) return;
  if (!opts.pull) throw errors.imageMissing(`image "${ref}" is not on the Docker engine (pulling is turned off: drivers.docker.pull)`);
  try {
    await pullImage(engine, ref, opts.onProgress);
  } catch (e) {
    throw errors.imageMissing(`image "${ref}" is not on the Docker engine and could not be pulled: ${engineMessage(e)}`);
  }
}

export async function hasImage(engine: Engine, ref: string): Promise<boolean> {
  try {
    await engine.getImage(ref).inspect();
    return true;
  } catch (e) {
    if (statusOf(e) === 404) return false;
    throw errors.driverUnavailable(`the Docker engine failed to look up image "${ref}": ${engineMessage(e)}`);
  }
}

async function pullImage(engine: Engine, ref: string, onProgress?: PullProgress): Promise<void> {
  const stream = await engine.pull(ref);
  await new Promise<void>((resolve, reject) => {
    engine.modem.followProgress(
      stream,
      (err: Error | null, events: { error?: string }[]) => {
        const failed = err ?? events.find((ev) => ev.error);
        if (failed) reject(failed instanceof Error ? failed : new Error(failed.error));
        else resolve();
      },
      (ev: { id?: string; status?: string; progress?: string; error?: string }) => {
        if (ev.status) onProgress?.([ev.id, ev.status, ev.progress].filter(Boolean).join(' '));
      },
    );
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
