/** `corral token create|ls|revoke|inspect`: your API tokens. `revoke` takes a token's name or id. */
import { Option, type Command } from 'commander';
import { SCOPES, type Scope } from '../../core/accounts/scopes.js';
import type { TokenInfo, User } from '../../core/accounts/types.js';
import type { ApiClient } from '../client.js';
import { apiAction, apiCommand } from '../command.js';
import { typedFlag, unitOption } from '../flags.js';
import { CliError, table } from '../output.js';
import { parseCount } from '../parse.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `-s a,b -s c` → [a, b, c]; an unknown scope is refused with the list of valid ones. */
function scopesFrom(given: string[] | undefined, flag: string): Scope[] | undefined {
  const scopes = given?.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  const unknown = scopes?.filter((s) => !(SCOPES as readonly string[]).includes(s)) ?? [];
  if (unknown.length) {
    throw new CliError('bad_input', `${flag}: unknown scope ${unknown.map((s) => `"${s}"`).join(', ')}; valid scopes: ${SCOPES.join(', ')}`);
  }
  return scopes as Scope[] | undefined;
}

/** The id of the token `ref` names: an id as it is, else your one unrevoked token of that name. */
async function tokenId(client: ApiClient, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const { tokens } = await client.get<{ tokens: TokenInfo[] }>('/tokens');
  const named = tokens.filter((t) => t.name === ref);
  const live = named.filter((t) => !t.revokedAt);
  if (live.length === 1) return live[0]!.id;
  if (live.length > 1) throw new CliError('ambiguous', `${live.length} tokens are named "${ref}": revoke one by its id (corral token ls)`);
  if (named.length) throw new CliError('token_revoked', `the token "${ref}" is already revoked`);
  throw new CliError('token_not_found', `no token named "${ref}" (corral token ls lists them)`);
}

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

  const scopeOption = new Option('-s, --scope <scope...>', `scopes it holds (default: all yours): ${SCOPES.join(', ')}`);
  apiCommand(token, 'create <name>', 'create a token and print it (shown only once)')
    .addOption(scopeOption)
    .addOption(unitOption('--ttl <duration>', "lifetime (default: the server's, 90 days)", 'seconds', 'ttlSeconds'))
    .action(
      apiAction(async ({ client, out }, name: string, flags: { scope?: string[]; ttl?: number }) => {
        const scopes = scopesFrom(flags.scope, typedFlag(scopeOption));
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

  apiCommand(token, 'revoke <token>', 'revoke a token at once, by its name or id').action(
    apiAction(async ({ client, out }, ref: string) => {
      const info = await client.delete<TokenInfo>(`/tokens/${encodeURIComponent(await tokenId(client, ref))}`);
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
