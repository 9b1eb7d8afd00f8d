/** `corral token create|ls|revoke|inspect`: your API tokens. */
import type { Command } from 'commander';
import { SCOPES, type Scope, type TokenInfo, type User } from '../../core/accounts/types.js';
import { apiAction, apiCommand } from '../command.js';
import { table } from '../output.js';
import { parseCount, parseDuration } from '../parse.js';

interface Me {
  user: User;
  scopes: Scope[];
  via: 'session' | 'token';
  tokenId?: string;
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('manage your API tokens (with -e: a golem-herder token for an email)');

  // golem-herder's `token -e EMAIL [-c CREDITS]`; its options come before any subcommand.
  token
    .enablePositionalOptions()
    .option('-e, --email <email>', 'golem-herder: print a token for this email (admin)')
    .option('-c, --credits <n>', "golem-herder: credits it carries (default: the server's, 30000)", (v) => parseCount(v, '--credits'))
    .option('--json', 'print machine-readable JSON')
    .option('-k, --insecure', 'accept a self-signed TLS certificate')
    .option('--url <url>', 'server URL (default: from `corral login` or CORRAL_URL)')
    .action(
      apiAction(async ({ client, out }, flags: { email?: string; credits?: number }) => {
        if (!flags.email) return void token.help();
        const made = await client.post<{ token: string; email: string; credits: number }>('/golem-herder/tokens', {
          email: flags.email,
          ...(flags.credits !== undefined && { credits: flags.credits }),
        });
        out(made, () => made.token);
      }),
    );

  apiCommand(token, 'create <name>', 'create a token and print it (shown only once)')
    .option('-s, --scope <scope...>', `scopes it holds (default: all yours): ${SCOPES.join(', ')}`)
    .option('--ttl <duration>', 'lifetime, e.g. 3600, 90m, 12h, 30d, 1w (default: the server\'s, 90 days)', (v) => parseDuration(v))
    .action(
      apiAction(async ({ client, out }, name: string, flags: { scope?: string[]; ttl?: number }) => {
        const scopes = flags.scope?.flatMap((s) => s.split(',')).filter(Boolean);
        const created = await client.post<{ token: string; info: TokenInfo }>('/tokens', { name, scopes, ttlSeconds: flags.ttl });
        // Text output is the bare token so that `T=$(corral token create x)` works.
        out(created, () => created.token);
      }),
    );

  apiCommand(token, 'ls', 'list your tokens').action(
    apiAction(async ({ client, out }) => {
      const { tokens } = await client.get<{ tokens: TokenInfo[] }>('/tokens');
      out(tokens, () =>
        table(
          ['ID', 'NAME', 'STATUS', 'EXPIRES', 'SCOPES'],
          tokens.map((t) => [t.id, t.name, status(t), t.expiresAt, t.scopes.join(',')]),
        ),
      );
    }),
  );

  apiCommand(token, 'revoke <id>', 'revoke a token at once').action(
    apiAction(async ({ client, out }, id: string) => {
      const info = await client.delete<TokenInfo>(`/tokens/${encodeURIComponent(id)}`);
      out(info, () => `revoked token "${info.name}" (${info.id})`);
    }),
  );

  apiCommand(token, 'inspect [token]', 'show who a token (default: your stored one) speaks for, its scopes and expiry').action(
    apiAction(async ({ client, out }, presented: string | undefined) => {
      const as = presented ? client.withToken(presented) : client;
      const me = await as.get<Me>('/me');
      const { tokens } = await as.get<{ tokens: TokenInfo[] }>('/tokens');
      const info = tokens.find((t) => t.id === me.tokenId);
      const result = { user: me.user.name, role: me.user.role, scopes: me.scopes, token: info ?? { id: me.tokenId } };
      out(result, () =>
        [
          `user:    ${me.user.name} (${me.user.role})`,
          `scopes:  ${me.scopes.join(' ') || '(none)'}`,
          ...(info
            ? [`token:   ${info.name} (${info.id})`, `created: ${info.createdAt}`, `expires: ${info.expiresAt}`, `status:  ${status(info)}`]
            : [`token:   ${me.tokenId ?? '?'}`]),
        ].join('\n'),
      );
    }),
  );
}

function status(t: TokenInfo): string {
  if (t.revokedAt) return 'revoked';
  return Date.parse(t.expiresAt) < Date.now() ? 'expired' : 'active';
}
