/** Accounts: users, login sessions and API tokens, composed over one store. */
import type { Config } from '../config.js';
import type { Store } from '../../store/index.js';
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
  ) {}

  static async open(config: Config, store: Store): Promise<Accounts> {
    const key = await loadSigningKey(config.data);
    const throttle = new LoginThrottle(config.auth.loginMaxFailures, config.auth.loginLockSeconds);
    return new Accounts(
      new UserService(store, throttle),
      new SessionService(store, config.auth.sessionTtlSeconds),
      new TokenService(store, key, config.auth.tokenTtlSeconds),
    );
  }
}

export * from './types.js';
export { hasScope, scopesForRole } from './scopes.js';
export { SESSION_COOKIE } from './sessions.js';
