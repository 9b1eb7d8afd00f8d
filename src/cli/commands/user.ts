/** `corral user add|ls|rm|passwd|groups`: manage users (admins), change your own password. */
import type { Command } from 'commander';
import { ROLES } from '../../core/accounts/scopes.js';
import type { User } from '../../core/accounts/types.js';
import { apiAction, apiCommand } from '../command.js';
import { CliError, table } from '../output.js';
import { parseCount } from '../parse.js';
import { ask, askNewPassword, readStdinSecrets } from '../prompt.js';
import { registerUserCreditsCommand } from './usage.js';

interface Groups {
  groups: string[];
  memberships: { group: string; source: string }[];
}

interface Me {
  user: User;
}

export function registerUserCommands(program: Command): void {
  const user = program.command('user').description('manage users (add, ls, rm need an admin token)');

  apiCommand(user, 'add <name>', 'create a user (asks for the password)')
    .option('--role <role>', `${ROLES.join(' or ')}`, 'user')
    .option('--credits <n>', 'starting credit balance', (v) => parseCount(v, '--credits'))
    .option('--password-stdin', 'read the password from standard input')
    .action(
      apiAction(async ({ client, out }, name: string, flags: { role: string; credits?: number; passwordStdin?: boolean }) => {
        if (!(ROLES as readonly string[]).includes(flags.role)) throw new CliError('bad_input', `--role must be ${ROLES.join(' or ')}`);
        const password = flags.passwordStdin ? (await readStdinSecrets(1, 'the password'))[0]! : await askNewPassword(`Password for ${name}`);
        const created = await client.post<User>('/users', { name, password, role: flags.role, credits: flags.credits });
        out(created, () => `created ${created.role} "${created.name}"`);
      }),
    );

  apiCommand(user, 'ls', 'list users').action(
    apiAction(async ({ client, out }) => {
      const { users } = await client.get<{ users: User[] }>('/users');
      out(users, () => table(['NAME', 'ROLE', 'CREDITS', 'CREATED'], users.map((u) => [u.name, u.role, String(u.credits), u.createdAt])));
    }),
  );

  registerUserCreditsCommand(user);

  apiCommand(user, 'rm <name>', 'delete a user, with their tokens and sessions').action(
    apiAction(async ({ client, out }, name: string) => {
      await client.delete(`/users/${encodeURIComponent(name)}`);
      out({ deleted: name }, () => `deleted "${name}"`);
    }),
  );

  apiCommand(user, 'groups <name> [groups...]', "show a user's groups; with groups (admin), set the ones an admin gives (--none: clear them)")
    .option('--none', 'remove every group an admin gave (those from an identity provider stay)')
    .action(
      apiAction(async ({ client, out }, name: string, groups: string[], flags: { none?: boolean }) => {
        const url = `/users/${encodeURIComponent(name)}/groups`;
        if (flags.none && groups.length) throw new CliError('bad_input', 'give groups or --none, not both');
        const r = groups.length || flags.none ? await client.put<Groups>(url, { groups }) : await client.get<Groups>(url);
        out(r, () => table(['GROUP', 'SOURCE'], r.memberships.map((m) => [m.group, m.source])));
      }),
    );

  apiCommand(user, 'passwd [name]', 'change your own password, or (admin) reset another user\'s')
    .option('--password-stdin', 'read the passwords from standard input: your current one then the new one, one per line (only the new one when resetting another user\'s)')
    .action(
      apiAction(async ({ client, out }, name: string | undefined, flags: { passwordStdin?: boolean }) => {
        const { user: me } = await client.get<Me>('/me');
        const target = name ?? me.name;
        if (target === me.name) {
          const [current, password] = flags.passwordStdin
            ? await readStdinSecrets(2, 'the current password and the new one, one per line')
            : [await ask('Current password', { secret: true }), await askNewPassword()];
          await client.put('/me/password', { current, password });
        } else {
          const password = flags.passwordStdin ? (await readStdinSecrets(1, 'the new password'))[0]! : await askNewPassword(`New password for ${target}`);
          await client.patch(`/users/${encodeURIComponent(target)}`, { password });
        }
        out({ user: target, changed: true }, () => `changed the password of "${target}"`);
      }),
    );
}
