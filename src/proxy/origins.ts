/**
 * Where things are served. The main origin (the API, the dashboard, the login form) is
 * `publicUrl`, by default `http://localhost:{port}`. Every instance port has an origin of
 * its own, `{instance}--{owner}[--{port}].{appsDomain}`, so an instance's page can never act
 * with its viewer's corral credentials or read another instance's pages: browsers keep
 * cookies, storage and script access apart per origin, and corral's session cookie is
 * host-only on the main host.
 *
 * A host label must map back to exactly one instance port, so it is built only from names
 * that are valid DNS labels without `--` (letters, digits, `_`, single inner hyphens):
 * then splitting on `--` is unambiguous. Other names have no host address.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Config } from '../core/config.js';
import { errors } from '../core/errors.js';

/** An instance or owner name usable in a host label. */
export const LABEL_NAME = '^[a-z0-9_]+(-[a-z0-9_]+)*$';
const LABEL_NAME_RE = new RegExp(LABEL_NAME);
const PORT_NAME_RE = /^[a-z][a-z0-9_]{0,30}$/;

export interface HostTarget {
  owner: string;
  instance: string;
  /** Port name; undefined = the instance's first port. */
  port: string | undefined;
  /** `{instance}--{owner}[--{port}]`: what app sessions and login codes are bound to. */
  label: string;
}

/** The host label of an instance port, or undefined when its names cannot form one. */
export function hostLabel(owner: string, instance: string, port?: string): string | undefined {
  if (!LABEL_NAME_RE.test(owner) || !LABEL_NAME_RE.test(instance)) return undefined;
  if (port !== undefined && !PORT_NAME_RE.test(port)) return undefined;
  const label = port === undefined ? `${instance}--${owner}` : `${instance}--${owner}--${port}`;
  return label.length <= 63 ? label : undefined;
}

/** The instance port a host label names, or undefined for a malformed label. */
export function parseHostLabel(label: string): HostTarget | undefined {
  if (label.length > 63) return undefined;
  const parts = label.split('--');
  if (parts.length < 2 || parts.length > 3) return undefined;
  const [instance, owner, port] = parts as [string, string, string | undefined];
  if (!LABEL_NAME_RE.test(instance) || !LABEL_NAME_RE.test(owner)) return undefined;
  if (port !== undefined && !PORT_NAME_RE.test(port)) return undefined;
  return { owner, instance, port, label };
}

/** `proxy.appsDomain`, or its old name `proxy.baseDomain`; both set differently is a config error. */
export function appsDomainOf(config: Config): string {
  const { appsDomain, baseDomain } = config.proxy;
  if (appsDomain && baseDomain && appsDomain !== baseDomain) {
    throw errors.config('config keys "proxy.appsDomain" and "proxy.baseDomain" (its old name) disagree: set only "proxy.appsDomain"');
  }
  return appsDomain ?? baseDomain ?? 'localhost';
}

const hostnameOf = (host: string) => {
  const h = host.toLowerCase();
  const colon = h.startsWith('[') ? h.indexOf(':', h.indexOf(']')) : h.lastIndexOf(':');
  const name = colon < 0 ? h : h.slice(0, colon);
  return name.endsWith('.') ? name.slice(0, -1) : name;
};

export class Origins {
  /** The apps domain's host name, and its port when one was configured. */
  readonly appsHostname: string;
  private readonly appsPort: string | undefined;
  private readonly suffix: string;
  private readonly publicOrigin: URL | undefined;
  private server: Server | undefined;
  private listening: URL | undefined;

  constructor(private readonly config: Config) {
    const domain = appsDomainOf(config);
    const colon = domain.indexOf(':');
    this.appsHostname = colon < 0 ? domain : domain.slice(0, colon);
    this.appsPort = colon < 0 ? undefined : domain.slice(colon + 1);
    this.suffix = `.${this.appsHostname}`;
    if (config.publicUrl !== undefined) {
      let u: URL;
      try {
        u = new URL(config.publicUrl);
      } catch {
        throw errors.config(`config key "publicUrl": not a URL (got ${JSON.stringify(config.publicUrl)})`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw errors.config('config key "publicUrl": must be an http:// or https:// URL');
      if (this.isAppHostname(u.hostname)) throw errors.config(`config key "publicUrl": ${u.hostname} looks like an instance host under proxy.appsDomain`);
      this.publicOrigin = new URL(u.origin);
    }
  }

  /** Lets the default main origin follow the port the server really listens on. */
  listenOn(server: Server): void {
    this.server = server;
  }

  /** The main origin, e.g. `http://localhost:8080`: the API, the dashboard and the login form. */
  main(): URL {
    if (this.publicOrigin) return this.publicOrigin;
    if (this.listening) return this.listening;
    const address = this.server?.address() as AddressInfo | null | undefined;
    const url = new URL(`${this.config.tls ? 'https' : 'http'}://localhost:${address?.port ?? this.config.port}`);
    if (address) this.listening = url;
    return url;
  }

  private isAppHostname(hostname: string): boolean {
    return hostname.endsWith(this.suffix) && hostname.length > this.suffix.length;
  }

  /**
   * For a request's Host header: undefined when it is not an instance host (the main host
   * and anything outside the apps domain), null for a malformed name under the apps domain,
   * else the instance port it names.
   */
  appHost(host: string | undefined): HostTarget | null | undefined {
    if (!host) return undefined;
    const hostname = hostnameOf(host);
    if (!this.isAppHostname(hostname)) return undefined; // publicUrl is never under the apps domain (checked above)
    const label = hostname.slice(0, -this.suffix.length);
    return (!label.includes('.') && parseHostLabel(label)) || null;
  }

  /** The origin of an instance host label, e.g. `http://web--alice.localhost:8080`. */
  appOrigin(label: string): string {
    const main = this.main();
    const port = this.appsPort ?? main.port;
    return `${main.protocol}//${label}.${this.appsHostname}${port ? `:${port}` : ''}`;
  }

  /** The URL an instance port is served at, or undefined when its names cannot form a host. */
  appUrl(owner: string, instance: string, port?: string): string | undefined {
    const label = hostLabel(owner, instance, port);
    return label && `${this.appOrigin(label)}/`;
  }

  /** The app URL with `{instance}` and `{owner}` left in, for the dashboard. */
  template(): string {
    return `${this.appOrigin('{instance}--{owner}')}/`;
  }
}
