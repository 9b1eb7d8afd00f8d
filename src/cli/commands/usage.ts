/**
 * `corral usage`: your balance and what used your credits (admins: `--user NAME`), and
 * `corral user credits NAME +1000|-500`: an admin's grant (registered under `corral user`).
 */
import type { Command } from 'commander';
import { GROUPINGS } from '../../core/credits/groupings.js';
import type { UsageReport } from '../../core/credits/usage.js';
import { apiAction, apiCommand } from '../command.js';
import { unitOption } from '../flags.js';
import { CliError, table } from '../output.js';
import { parseCount } from '../parse.js';

const MiB = 1024 * 1024;
const bytes = (n: number) => (n >= 1024 * MiB ? `${(n / 1024 / MiB).toFixed(1)} GiB` : `${Math.round(n / MiB)} MiB`);
const limit = (n: number, show: (n: number) => string = String) => (n ? show(n) : 'no limit');

function usageText(u: UsageReport): string {
  const lines = [`${u.user}: ${u.balance} credits (spent ${u.spent}, credited ${u.credited}${u.from ? ` since ${u.from}` : ''})`];
  if (u.groups.length) {
    lines.push(
      '',
      table(
        [u.group.toUpperCase(), 'KIND', 'SECONDS', 'CREDITS'],
        u.groups.map((g) => [g.name ?? g.key, g.kind ?? '', g.seconds ? g.seconds.toFixed(1) : '', String(g.credits)]),
      ),
    );
  }
  if (u.records.length) {
    lines.push('', table(['WHEN', 'KIND', 'WHAT', 'CREDITS', 'BALANCE'], u.records.map((r) => [r.at, r.kind, r.what, String(r.credits), String(r.balance)])));
  }
  const q = u.quotas;
  const use = u.quotaUse;
  lines.push(
    '',
    `quotas: instances ${use.instances}/${limit(q.instances)}, running ${use.runningInstances}/${limit(q.runningInstances)}, ` +
      `memory ${bytes(use.memoryBytes)}/${limit(q.memoryBytes, bytes)}, jobs ${use.concurrentJobs}/${limit(q.concurrentJobs)}`,
  );
  return lines.join('\n');
}

export function registerUsageCommands(program: Command): void {
  apiCommand(program, 'usage', 'your credit balance and what used it (admins: --user NAME)')
    .option('--user <name>', "admins: another user's usage")
    .addOption(unitOption('--since <duration>', 'only what was used this recently', 'duration'))
    .option('--by <grouping>', `sum per ${GROUPINGS.join(', ')}`, 'instance')
    .option('--records <n>', 'also list the newest N ledger rows', (v) => parseCount(v, '--records'), 0)
    .action(
      apiAction(async ({ client, out }, flags: { user?: string; since?: number; by: string; records: number }) => {
        if (!(GROUPINGS as readonly string[]).includes(flags.by)) throw new CliError('bad_input', `--by must be ${GROUPINGS.join(', ')}`);
        const q = new URLSearchParams({ group: flags.by, limit: String(flags.records) });
        if (flags.user) q.set('user', flags.user);
        if (flags.since !== undefined) q.set('from', new Date(Date.now() - flags.since * 1000).toISOString());
        const u = await client.get<UsageReport>(`/usage?${q}`);
        out(u, () => usageText(u));
      }),
    );
}

/** `corral user credits NAME AMOUNT`: `+1000` grants, `-500` takes away (a bare number grants). */
export function registerUserCreditsCommand(user: Command): void {
  apiCommand(user, 'credits <name> <amount>', 'grant credits (+1000) or take them away (-500); admins only')
    .option('--reason <text>', 'recorded in the ledger')
    .action(
      apiAction(async ({ client, out }, name: string, amount: string, flags: { reason?: string }) => {
        if (!/^[+-]?\d+$/.test(amount) || Number(amount) === 0) throw new CliError('bad_input', `amount must be like +1000 or -500, got "${amount}"`);
        const r = await client.post<{ user: string; balance: number }>(`/users/${encodeURIComponent(name)}/credits`, {
          amount: Number(amount),
          ...(flags.reason && { reason: flags.reason }),
        });
        out(r, () => `${r.user} now has ${r.balance} credits`);
      }),
    );
}
