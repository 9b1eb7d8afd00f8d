/** Accounts: users, login sessions and API tokens, composed over one store. */
import type { Config } from '../config.js';
import type { Store } from '../../store/index.js';
import { PasskeyService } from './passkeys.js';
import { LdapDirectory } from './ldap.js';
import { SessionService } from './sessions.js';
import { loadSigningKey } from './signing-key.js';
import { LoginThrottle } from './throttle.js';
import { TokenService } from './tokens.js';
import { UserService } from './users.js';

export class Accounts {
  private constructor(
    readonly users: UserService,
    readonly sessions: SessionService,
    readonly tokens: TokenService,
    /** Every password check goes through it (golem-herder's token password too). */
    readonly throttle: LoginThrottle,
    /** Passkey registration and sign-in (passkeys.ts); the http layer gives it the main origin. */
    readonly passkeys: PasskeyService,
  ) {}

  static async open(config: Config, store: Store): Promise<Accounts> {
    const key = await loadSigningKey(config.data);
    const { loginMaxFailures, loginMaxFailuresPerAddress, loginMaxFailuresPerUser, loginLockSeconds } = config.auth;
    const throttle = new LoginThrottle(store.loginThrottle, {
      perPair: loginMaxFailures,
      perAddress: loginMaxFailuresPerAddress ?? 4 * loginMaxFailures,
      perSubject: loginMaxFailuresPerUser ?? 4 * loginMaxFailures,
      lockSeconds: loginLockSeconds,
    });
    const users = new UserService(store, throttle, config.auth.localPasswords, config.auth.ldap && new LdapDirectory(config.auth.ldap));
    return new Accounts(
      users,
      new SessionService(store, config.auth.sessionTtlSeconds),
      new TokenService(store, key, config.auth.tokenTtlSeconds),
      throttle,
      new PasskeyService(store, config.auth.passkeys, users.groups, throttle),
    );
  }
}

export * from './types.js';
export { hasScope, scopesForRole } from './scopes.js';
export { SESSION_COOKIE } from './sessions.js';
