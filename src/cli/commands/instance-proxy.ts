/**
 * `corral instance share|url|open`: an instance as the proxy serves it (docs/proxy.md) — who
 * else may open it, idle culling, start on open, the owner's default — and its address.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import type { Instance } from '../../core/instances/spec.js';
import type { ApiClient } from '../client.js';
import { apiAction, apiCommand } from '../command.js';
import { unitOption } from '../flags.js';
import { CliError, labelled } from '../output.js';
import { formatDuration } from '../units.js';

interface ProxySettings {
  sharedWith: string[];
  default: boolean;
  idleTimeoutSeconds: number;
  startOnDemand: boolean;
  url: string | null;
}

interface ShareFlags {
  remove?: string[];
  nobody?: boolean;
  idleStop?: number;
  startOnOpen?: boolean;
  default?: boolean;
}

/** `/proxy/OWNER/NAME` of the instance `ref` names (an id, a name or owner:name). */
async function proxyPath(client: ApiClient, ref: string): Promise<{ path: string; instance: Instance }> {
  const instance = await client.get<Instance>(`/instances/${encodeURIComponent(ref)}`);
  return { path: `/proxy/${encodeURIComponent(instance.owner)}/${encodeURIComponent(instance.name)}`, instance };
}

function describeSettings(name: string, s: ProxySettings): string {
  const rows: [string, string][] = [
    ['shared with', s.sharedWith.join(', ') || 'nobody'],
    ['stops when idle', s.idleTimeoutSeconds ? `after ${formatDuration(s.idleTimeoutSeconds)} without traffic` : 'never'],
    ['start on open', s.startOnDemand ? 'yes' : 'no'],
    ['your default', s.default ? 'yes (/ opens it after login)' : 'no'],
  ];
  return `${name}: ${s.url ?? "no address (its or its owner's name cannot be a host name)"}\n${labelled(rows)}`;
}

/** Its address, or why it has none. */
async function urlOf(client: ApiClient, ref: string): Promise<string> {
  const { path, instance } = await proxyPath(client, ref);
  if (!instance.ports.length && !instance.spec.ports?.length) {
    throw new CliError('no_port', `${instance.name} has no port to open: create it with a port (-p web)`);
  }
  const { url } = await client.get<ProxySettings>(path);
  if (!url) throw new CliError('no_url', `${instance.owner}:${instance.name} has no address: its or its owner's name cannot be a host name`);
  return url;
}

/** The command that opens a URL in a browser here: $BROWSER, else the platform's opener. */
function opener(url: string): [string, string[]] {
  if (process.env.BROWSER) return [process.env.BROWSER, [url]];
  if (process.platform === 'darwin') return ['open', [url]];
  if (process.platform === 'win32') return ['cmd', ['/c', 'start', '', url]];
  return ['xdg-open', [url]];
}

function openInBrowser(url: string): Promise<boolean> {
  const [cmd, args] = opener(url);
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true });
    child.once('error', () => resolve(false));
    child.once('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}

export function registerInstanceProxyCommands(inst: Command): void {
  apiCommand(inst, 'share <instance> [users...]', 'share an instance with users, stop it when idle, start it on open; no options: show')
    .option('--remove <user...>', 'stop sharing with these users')
    .option('--nobody', 'share with nobody (but you and admins)')
    .addOption(unitOption('--idle-stop <duration>', 'stop it after this long without traffic through the proxy (0: never)', 'seconds', 'idleTimeoutSeconds'))
    .option('--start-on-open', 'opening it through the proxy starts it when stopped')
    .option('--no-start-on-open', 'opening it does not start it')
    .option('--default', 'make it what / opens after you log in')
    .option('--no-default', 'no longer your default')
    .action(
      apiAction(async ({ client, out }, ref: string, users: string[], flags: ShareFlags) => {
        const { path, instance } = await proxyPath(client, ref);
        const before = await client.get<ProxySettings>(path);
        const change: Record<string, unknown> = {};
        if (users.length || flags.remove || flags.nobody) {
          const kept = flags.nobody ? [] : before.sharedWith.filter((u) => !flags.remove?.includes(u));
          change.sharedWith = [...new Set([...kept, ...users])];
        }
        if (flags.idleStop !== undefined) change.idleTimeoutSeconds = flags.idleStop;
        if (flags.startOnOpen !== undefined) change.startOnDemand = flags.startOnOpen;
        if (flags.default !== undefined) change.default = flags.default;
        const after = Object.keys(change).length ? await client.put<ProxySettings>(path, change) : before;
        out(after, () => describeSettings(`${instance.owner}:${instance.name}`, after));
      }),
    );

  apiCommand(inst, 'url <instance>', 'print the address the proxy serves an instance at').action(
    apiAction(async ({ client, out }, ref: string) => {
      const url = await urlOf(client, ref);
      out({ url }, () => url);
    }),
  );

  apiCommand(inst, 'open <instance>', 'open an instance in your browser ($BROWSER, else xdg-open/open)').action(
    apiAction(async ({ client, out }, ref: string) => {
      const url = await urlOf(client, ref);
      const opened = await openInBrowser(url);
      if (!opened) process.stderr.write(`no browser to open it with here (set BROWSER); open ${url} yourself\n`);
      out({ url, opened }, () => (opened ? `opening ${url}` : url));
    }),
  );
}
