/**
 * `corral group ls|show|quota|grant`: groups as admins see them (API: /groups, /groups/{group},
 * /groups/{group}/quotas, /groups/{group}/credits). A group exists while someone is in it;
 * a user's groups are set with `corral user groups`. Memory quotas take sizes (`512M`, `2G`).
 */
import type { Command } from 'commander';
import { apiAction, apiCommand } from '../command.js';
import { unitOption } from '../flags.js';
import { CliError, labelled, table } from '../output.js';
import { formatSize } from '../units.js';

type Quotas = Partial<Record<QuotaKey, number | null>>;
type QuotaKey = 'instances' | 'runningInstances' | 'memoryBytes' | 'concurrentJobs';

/** The quotas' names on the command line, and their API fields. */
const QUOTA_FLAGS: Record<string, QuotaKey> = { instances: 'instances', running: 'runningInstances', memory: 'memoryBytes', jobs: 'concurrentJobs' };

interface Group {
  group: string;
  members: { user: string; source: string }[];
  quotas: Quotas;
}

function quotaText(q: Quotas): [string, string][] {
  const value = (k: QuotaKey) => {
    const v = q[k];
    if (v === undefined || v === null) return 'server default';
    if (v === 0) return 'no limit';
    return k === 'memoryBytes' ? formatSize(v) : String(v);
  };
  return Object.entries(QUOTA_FLAGS).map(([flag, k]) => [flag, value(k)]);
}

export function registerGroupCommands(program: Command): void {
  const group = program.command('group').description("groups: members, quotas, credit grants (admins; a user's groups: corral user groups)");

  apiCommand(group, 'ls', 'list groups and their members').action(
    apiAction(async ({ client, out }) => {
      const { groups } = await client.get<{ groups: Group[] }>('/groups');
      const rows = groups.map((g) => ({ group: g.group, members: g.members.map((m) => m.user) }));
      out(rows, () => table(['GROUP', 'MEMBERS'], rows.map((r) => [r.group, [...new Set(r.members)].join(', ')])));
    }),
  );

  apiCommand(group, 'show <group>', "a group's members (with where each membership comes from) and quotas").action(
    apiAction(async ({ client, out }, name: string) => {
      const { members, quotas } = await client.get<Group>(`/groups/${encodeURIComponent(name)}`);
      out({ group: name, members, quotas }, () =>
        [`group ${name}`, members.length ? table(['MEMBER', 'SOURCE'], members.map((m) => [m.user, m.source])) : '  no members', 'quotas:', labelled(quotaText(quotas))].join('\n'),
      );
    }),
  );

  apiCommand(group, 'quota <group>', "show or change a group's quotas (0: no limit; --clear: back to the server default)")
    .addOption(unitOption('--instances <n>', 'instances each member may have', 'count', 'instances'))
    .addOption(unitOption('--running <n>', 'instances each member may run at once', 'count', 'runningInstances'))
    .addOption(unitOption('-m, --memory <size>', 'memory all of a member\'s running instances may hold', 'size', 'memoryBytes'))
    .addOption(unitOption('--jobs <n>', 'jobs each member may run at once', 'count', 'concurrentJobs'))
    .option('--clear <quota...>', `back to the server default: ${Object.keys(QUOTA_FLAGS).join(', ')}`)
    .action(
      apiAction(async ({ client, out }, name: string, flags: { instances?: number; running?: number; memory?: number; jobs?: number; clear?: string[] }) => {
        const patch: Quotas = {};
        for (const [flag, key] of Object.entries(QUOTA_FLAGS)) {
          const v = flags[flag as 'instances'];
          if (v !== undefined) patch[key] = v;
        }
        for (const c of flags.clear ?? []) {
          const key = QUOTA_FLAGS[c];
          if (!key) throw new CliError('bad_input', `--clear: "${c}" is not a quota; one of ${Object.keys(QUOTA_FLAGS).join(', ')}`);
          if (patch[key] !== undefined) throw new CliError('bad_input', `--clear ${c} and --${c}: give one`);
          patch[key] = null;
        }
        const url = `/groups/${encodeURIComponent(name)}/quotas`;
        const r = Object.keys(patch).length ? await client.put<{ group: string; quotas: Quotas }>(url, patch) : await client.get<{ group: string; quotas: Quotas }>(url);
        out(r, () => `quotas of ${name}:\n${labelled(quotaText(r.quotas))}`);
      }),
    );

  apiCommand(group, 'grant <group> <amount>', 'grant credits to each member (+1000) or take them away (-500)')
    .option('--reason <text>', 'recorded in the ledger')
    .action(
      apiAction(async ({ client, out }, name: string, amount: string, flags: { reason?: string }) => {
        if (!/^[+-]?\d+$/.test(amount) || Number(amount) === 0) throw new CliError('bad_input', `amount must be like +1000 or -500, got "${amount}"`);
        const r = await client.post<{ group: string; granted: { user: string; balance: number }[] }>(`/groups/${encodeURIComponent(name)}/credits`, {
          amount: Number(amount),
          ...(flags.reason && { reason: flags.reason }),
        });
        out(r, () => (r.granted.length ? table(['MEMBER', 'BALANCE'], [...r.granted].sort((x, y) => (x.user < y.user ? -1 : 1)).map((g) => [g.user, String(g.balance)])) : `${name} has no members: nothing granted`));
      }),
    );
}
