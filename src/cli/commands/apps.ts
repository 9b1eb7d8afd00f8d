/**
 * App commands over the apps API (docs/apps.md): `corral apps` (list, show, restart, rm),
 * `corral releases APP`, `corral rollback APP [vN]`, `corral env APP` / `env set APP K=V …`
 * / `env unset APP K …`, and `corral scale APP web=3 worker=1`. `APP` is an app's name, or
 * (admins) `owner:name`. Changes that start new copies print why when they fail.
 */
import type { Command } from 'commander';
import type { App, DeployResult, Release } from '../../core/apps/spec.js';
import type { ApiClient } from '../client.js';
import { apiAction, apiCommand } from '../command.js';
import { CliError, table } from '../output.js';
import { describeResult, printFailure } from './deploy.js';

const appPath = (app: string) => `/apps/${encodeURIComponent(app)}`;

/** Calls the API; a failed release prints its state, exit code and log lines before the error. */
async function changing<T>(client: ApiClient, method: string, path: string, body?: unknown): Promise<T> {
  const reply = await client.raw(method, path, body);
  if (reply.status < 400) return reply.body as T;
  const e = (reply.body as { error?: { code?: string; message?: string; state?: string; logs?: string[] } } | undefined)?.error;
  if (e?.code === 'deploy_failed') printFailure(e as Parameters<typeof printFailure>[0]);
  throw new CliError(e?.code ?? `http_${reply.status}`, e?.message ?? `the server answered ${reply.status}`);
}

function describeApp(a: App): string {
  const lines = [
    `${a.owner}:${a.name}  ${a.id}`,
    `release:   ${a.currentVersion === null ? 'none serving' : `v${a.currentVersion}`}`,
    `url:       ${a.url}`,
    `formation: ${Object.entries(a.formation).map(([t, n]) => `${t}=${n}`).join(' ') || 'none'}`,
    `config:    ${a.configVars.join(', ') || 'none'}`,
  ];
  if (a.switch) lines.push(`switch:    to v${a.switch.version}, ${a.switch.phase} since ${a.switch.startedAt}`);
  if (a.copies.length) {
    lines.push(
      table(
        ['COPY', 'RELEASE', 'ROLE', 'STATE', 'READY', 'RESTARTS'],
        a.copies.map((c) => [c.instance, `v${c.version}`, c.role, c.state, c.type === 'web' ? (c.ready ? 'yes' : 'no') : '-', String(c.restartCount)]),
      ),
    );
  }
  return lines.join('\n');
}

/** `v3` or `3` → 3. */
function parseVersion(v: string): number {
  const m = /^v?(\d+)$/.exec(v);
  if (!m || Number(m[1]) < 1) throw new CliError('bad_input', `a release is like v3 or 3, got "${v}"`);
  return Number(m[1]);
}

/** `web=3` pairs → a formation. */
export function parseFormation(pairs: string[]): Record<string, number> {
  const formation: Record<string, number> = {};
  for (const p of pairs) {
    const m = /^([A-Za-z0-9_-]{1,63})=(-?\d+)$/.exec(p);
    if (!m) throw new CliError('bad_input', `scale takes TYPE=COUNT pairs like web=3, got "${p}"`);
    formation[m[1]!] = Number(m[2]);
  }
  return formation;
}

export function registerAppCommands(program: Command): void {
  const apps = program.command('apps').description('apps deployed with `corral deploy`');
  apiCommand(apps, 'ls', 'list your apps').action(
    apiAction(async ({ client, out }) => {
      const { apps: list } = await client.get<{ apps: App[] }>('/apps');
      out(list, () =>
        table(
          ['NAME', 'OWNER', 'RELEASE', 'FORMATION', 'READY'],
          list.map((a) => [
            a.name,
            a.owner,
            a.currentVersion === null ? '-' : `v${a.currentVersion}`,
            Object.entries(a.formation).map(([t, n]) => `${t}=${n}`).join(' '),
            `${a.copies.filter((c) => c.ready).length}/${a.copies.filter((c) => c.type === 'web' && c.role === 'active').length}`,
          ]),
        ),
      );
    }),
  );
  apiCommand(apps, 'show <app>', 'show an app: release, formation, copies, config var names').action(
    apiAction(async ({ client, out }, app: string) => {
      const a = await client.get<App>(appPath(app));
      out(a, () => describeApp(a));
    }),
  );
  apiCommand(apps, 'restart <app>', 'new copies of the current release, switched to without downtime').action(
    apiAction(async ({ client, out }, app: string) => {
      const a = await changing<App>(client, 'POST', `${appPath(app)}/restart`);
      out(a, () => `${a.name} restarted (v${a.currentVersion})`);
    }),
  );
  apiCommand(apps, 'rm <app>', 'stop every copy and delete the app and its releases').action(
    apiAction(async ({ client, out }, app: string) => {
      await client.delete(appPath(app));
      out({ deleted: app }, () => `deleted ${app}`);
    }),
  );

  apiCommand(program, 'releases <app>', "list an app's releases, newest first").action(
    apiAction(async ({ client, out }, app: string) => {
      const { releases } = await client.get<{ releases: Release[] }>(`${appPath(app)}/releases`);
      out(releases, () =>
        table(
          ['VERSION', 'STATUS', 'CREATED', 'BY', 'DESCRIPTION'],
          releases.map((r) => [`v${r.version}`, r.status, r.createdAt, r.createdBy, r.error ? `${r.description} — ${r.error}` : r.description]),
        ),
      );
    }),
  );

  apiCommand(program, 'rollback <app> [release]', "a new release from an old one's source and config vars (default: the one before)").action(
    apiAction(async ({ client, out }, app: string, release: string | undefined) => {
      const body = release === undefined ? {} : { version: parseVersion(release) };
      const r = await changing<DeployResult>(client, 'POST', `${appPath(app)}/rollback`, body);
      out(r, () => `${describeResult(r)} (${r.release.description})`);
    }),
  );

  const env = apiCommand(program, 'env <app>', "an app's config vars (each change is a new release and a zero-downtime restart)").action(
    apiAction(async ({ client, out }, app: string) => {
      const { env: vars } = await client.get<{ env: Record<string, string> }>(`${appPath(app)}/env`);
      out(vars, () => Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n'));
    }),
  );
  const envChange = (what: string) => async (client: ApiClient, out: (v: unknown, t: () => string) => void, app: string, body: unknown) => {
    const r = await changing<{ app: App; release: Release | null }>(client, 'PATCH', `${appPath(app)}/env`, body);
    out(r, () => (r.release ? `${what}; ${r.app.name} v${r.release.version} is serving` : `${what}; ${r.app.name} has no release yet`));
  };
  apiCommand(env, 'set <app> <pairs...>', 'set config vars: KEY=VALUE …').action(
    apiAction(async ({ client, out }, app: string, pairs: string[]) => {
      const set: Record<string, string> = {};
      for (const kv of pairs) {
        const eq = kv.indexOf('=');
        if (eq < 1) throw new CliError('bad_input', `env set takes KEY=VALUE, got "${kv}"`);
        set[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      await envChange(`set ${Object.keys(set).join(', ')}`)(client, out, app, { set });
    }),
  );
  apiCommand(env, 'unset <app> <keys...>', 'remove config vars').action(
    apiAction(async ({ client, out }, app: string, keys: string[]) => {
      await envChange(`unset ${keys.join(', ')}`)(client, out, app, { unset: keys });
    }),
  );

  apiCommand(program, 'scale <app> <pairs...>', 'copies per process type: web=3 worker=1').action(
    apiAction(async ({ client, out }, app: string, pairs: string[]) => {
      const a = await changing<App>(client, 'PUT', `${appPath(app)}/formation`, parseFormation(pairs));
      out(a, () => `${a.name}: ${Object.entries(a.formation).map(([t, n]) => `${t}=${n}`).join(' ')}`);
    }),
  );
}
