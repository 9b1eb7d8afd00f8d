/** `corral login URL`: log in with a password, create a token, store it for later commands; `corral logout`. */
import type { Command } from 'commander';
import { hostname } from 'node:os';
import type { User } from '../../core/accounts/types.js';
import { ApiClient, replyError } from '../client.js';
import { apiAction, apiCommand, jsonOption } from '../command.js';
import { forgetCredentials, writeCredentials } from '../credentials.js';
import { print, runAction } from '../output.js';
import { ask, readStdinSecrets, stdinIsTty } from '../prompt.js';

interface LoginFlags {
  user?: string;
  passwordStdin?: boolean;
  insecure?: boolean;
  tokenName?: string;
  json?: boolean;
}

export function registerLoginCommand(program: Command): void {
  jsonOption(program.command('login <url>'))
    .description('log in to a corral server and store a new API token in ~/.config/corral/config.json')
    .option('-u, --user <name>', 'user name (asked when on a terminal; default admin)')
    .option('--password-stdin', 'read the password from standard input (for scripts)')
    .option('-k, --insecure', 'accept a self-signed TLS certificate (remembered)')
    .option('--token-name <name>', 'name of the token to create (default cli@HOST-TIME)')
    .action(runAction.wrap(login));

  apiCommand(program, 'logout', 'revoke the stored token and forget it').action(
    apiAction(async ({ client, out }) => {
      const { tokenId } = await client.get<{ tokenId?: string }>('/me');
      if (tokenId) await client.delete(`/tokens/${tokenId}`);
      const file = await forgetCredentials();
      out({ revoked: tokenId ?? null, file }, () => `logged out: token revoked and removed from ${file}`);
    }),
  );
}

async function login(url: string, flags: LoginFlags): Promise<void> {
  const name = flags.user ?? (stdinIsTty() ? await ask('User', { default: 'admin' }) : 'admin');
  const password = flags.passwordStdin ? (await readStdinSecrets(1, 'the password'))[0]! : await ask('Password', { secret: true });
  const insecure = !!flags.insecure;
  const anonymous = new ApiClient({ url, insecure });

  // A session just long enough to create the token, then logged out.
  const reply = await anonymous.raw('POST', '/login', { name, password });
  if (reply.status !== 200) throw replyError(reply);
  const { csrfToken, user } = reply.body as { csrfToken: string; user: User };
  const cookie = sessionCookie(reply.headers['set-cookie']);
  const session = { headers: { cookie, 'x-csrf-token': csrfToken } };
  const tokenName = flags.tokenName ?? defaultTokenName();
  const { token, info } = await anonymous.post<{ token: string; info: { id: string; expiresAt: string } }>(
    '/tokens',
    { name: tokenName },
    session,
  );
  await anonymous.post('/logout', undefined, session).catch(() => undefined);

  const file = await writeCredentials({ url: anonymous.url, token, insecure });
  print(!!flags.json, { url: anonymous.url, user: user.name, role: user.role, tokenId: info.id, expiresAt: info.expiresAt, file }, () =>
    `logged in to ${anonymous.url} as ${user.name} (${user.role}); token "${tokenName}" saved in ${file}, expires ${info.expiresAt}`,
  );
}

function sessionCookie(setCookie: string | string[] | undefined): string {
  const all = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  return all.map((c) => c.split(';')[0]).join('; ');
}

/** cli@host-20261123T101500: unique per login and allowed by the token name pattern. */
function defaultTokenName(): string {
  const host = hostname().replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 32) || 'host';
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  return `cli@${host}-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}
