/**
 * Users: creation, the first admin, password checks with throttling, role and password
 * changes. Every new password passes the password policy; every password check goes
 * through the login throttle; a changed password ends the user's other sessions and tokens.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ExternalIdentityStore } from '../../store/external-identities.js';
import type { Store } from '../../store/index.js';
import { errors } from '../errors.js';
import { checkNewPassword, passwordProblem } from './password-policy.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { GroupService } from './groups.js';
import { LDAP_SOURCE, type LdapDirectory } from './ldap.js';
import type { OidcIdentity } from './oidc.js';
import type { LoginThrottle } from './throttle.js';
import type { Principal, Role, User } from './types.js';

/** The credential making a change: it keeps working when the change ends the others. */
export type Caller = Principal['via'];

/** A password hash no password matches: users who sign in through an identity provider only. */
const NO_PASSWORD = '!external';

export class UserService {
  private readonly identities: ExternalIdentityStore;
  readonly groups: GroupService;

  constructor(
    private readonly store: Store,
    private readonly throttle: LoginThrottle,
    /** `auth.localPasswords`: false refuses every password sign-in (but the directory's). */
    private readonly localPasswords = true,
    /** `auth.ldap`: names that are not local password users are checked there. */
    private readonly ldap?: LdapDirectory,
  ) {
    this.identities = new ExternalIdentityStore(store.db);
    this.groups = new GroupService(store);
  }

  async create(req: { name: string; password: string; role?: Role | undefined; credits?: number | undefined }): Promise<User> {
    if (await this.store.users.byName(req.name)) throw errors.userExists(req.name);
    await checkNewPassword(req.password, req.name);
    const user = await this.store.users.insert({
      id: randomUUID(),
      name: req.name,
      role: req.role ?? 'user',
      passwordHash: await hashPassword(req.password),
      credits: 0,
    });
    // Starting credits go through the ledger like every other balance change.
    if (!req.credits) return user;
    const entry = await this.store.ledger.apply({ userId: user.id, amount: req.credits, kind: 'grant', reason: 'starting credits' });
    return { ...user, credits: entry?.balance ?? user.credits };
  }

  /**
   * On a first start with no admin, creates `admin` with the given password or a random one.
   * Returns the password when it was generated, so the caller can print it once.
   */
  async ensureAdmin(password: string | undefined): Promise<{ generatedPassword?: string } | undefined> {
    if ((await this.store.users.countAdmins()) > 0) return undefined;
    const problem = password && (await passwordProblem(password, 'admin'));
    if (problem) throw errors.config(`adminPassword (CORRAL_ADMIN_PASSWORD) ${problem}`);
    const generated = password ? undefined : randomBytes(18).toString('base64url');
    const existing = await this.store.users.byName('admin');
    if (existing) {
      await this.store.users.update(existing.id, { role: 'admin', passwordHash: await hashPassword(password ?? generated!) });
    } else {
      await this.create({ name: 'admin', password: password ?? generated!, role: 'admin' });
    }
    return generated ? { generatedPassword: generated } : {};
  }

  /**
   * Checks a name and password from `address` — locally, then in the LDAP directory (see
   * checkPassword) — as one throttled attempt (see throttle.ts), 429 when locked.
   */
  async verifyLogin(name: string, password: string, address: string): Promise<User> {
    if (!this.localPasswords && !this.ldap) throw errors.localPasswordsOff('password sign-in is turned off here; use your organisation\'s sign-in');
    let user: User | undefined;
    // A directory matches names without regard to case and surrounding spaces: so do the
    // throttle's counters, or "Alice" and "alice " would be fresh subjects to guess at.
    const ok = await this.throttle.attempt(`login:${name.trim().replace(/\s+/g, ' ').toLowerCase()}`, address, async () => {
      user = await this.checkPassword(name, password);
      return !!user;
    });
    if (!ok || !user) throw errors.badCredentials('wrong user name or password');
    return user;
  }

  /**
   * A local password user is checked here only, unless `auth.ldap.linkExistingUsers` lets
   * the directory vouch for the same name: an entry in the directory must not take over a
   * local account. Every other name (no such user, or one without a password) goes to the
   * directory, whose user is then found by its link, created, or refused like OIDC's.
   */
  private async checkPassword(name: string, password: string): Promise<User | undefined> {
    const found = await this.store.users.byName(name);
    const local = !!found && found.passwordHash !== NO_PASSWORD;
    if (this.localPasswords && (await verifyPassword(local ? found.passwordHash : undefined, password))) {
      const { passwordHash: _, ...user } = found!;
      return user;
    }
    if (!this.ldap || (local && !this.ldap.linkExistingUsers)) return undefined;
    const identity = await this.ldap.authenticate(name, password);
    return identity && this.signInExternal(LDAP_SOURCE, identity, this.ldap.linkExistingUsers, this.ldap.createUsers);
  }

  /**
   * The user an identity provider vouched for: the one linked to its subject, else (first
   * sign-in) a new user of that name — or the existing local user of that name only when
   * `linkExisting` allows it. With admin groups configured, `identity.admin` sets the role
   * at every sign-in (never demoting the last admin). `create: false` refuses to create one.
   */
  async signInExternal(provider: string, identity: OidcIdentity, linkExisting: boolean, create = true): Promise<User> {
    const linkedId = await this.identities.userIdFor(provider, identity.subject);
    let user = linkedId ? await this.store.users.byId(linkedId) : undefined;
    if (!user) {
      const existing = await this.store.users.byName(identity.name);
      if (existing && !linkExisting) {
        throw errors.signInRefused(`a user named "${identity.name}" already exists here; an admin must allow linking it (linkExistingUsers)`);
      }
      if (existing) {
        const { passwordHash: _, ...u } = existing;
        user = u;
      } else if (!create) {
        throw errors.signInRefused(`there is no user "${identity.name}" here yet; an admin must create it first`);
      } else {
        user = await this.store.users.insert({ id: randomUUID(), name: identity.name, role: identity.admin ? 'admin' : 'user', passwordHash: NO_PASSWORD, credits: 0 });
      }
      await this.identities.link(provider, identity.subject, user.id);
    }
    if (identity.admin !== undefined && (user.role === 'admin') !== identity.admin) {
      const demotingLast = !identity.admin && (await this.store.users.countAdmins()) <= 1;
      if (!demotingLast) {
        await this.store.users.update(user.id, { role: identity.admin ? 'admin' : 'user' });
        user = { ...user, role: identity.admin ? 'admin' : 'user' };
      }
    }
    // The provider is the truth about its groups at each sign-in (leavers lose them).
    await this.groups.set(user.id, provider, identity.groups);
    return user;
  }

  list(): Promise<User[]> {
    return this.store.users.list();
  }

  async get(name: string): Promise<User> {
    const found = await this.store.users.byName(name);
    if (!found) throw errors.userNotFound(name);
    const { passwordHash: _, ...user } = found;
    return user;
  }

  /** An admin's change; `by` is the admin's own credential (kept if they reset themselves). */
  async update(name: string, patch: { role?: Role | undefined; password?: string | undefined }, by?: { user: User; via: Caller }): Promise<User> {
    const user = await this.get(name);
    if (patch.role === 'user' && user.role === 'admin' && (await this.store.users.countAdmins()) <= 1) {
      throw errors.lastAdmin('cannot demote the last admin');
    }
    if (patch.password) await checkNewPassword(patch.password, user.name);
    await this.store.users.update(user.id, {
      ...(patch.role && { role: patch.role }),
      ...(patch.password && { passwordHash: await hashPassword(patch.password) }),
    });
    if (patch.password) await this.endOtherCredentials(user, by?.user.id === user.id ? by.via : undefined);
    return this.get(name);
  }

  /**
   * A user changing their own password must give the current one; wrong guesses count
   * towards the same lock-out as failed logins from `address`, so a stolen token cannot
   * brute-force it. The caller's own session or token keeps working; every other one ends.
   */
  async changeOwnPassword(user: User, current: string, next: string, caller: { address: string; via: Caller }): Promise<void> {
    await checkNewPassword(next, user.name);
    const ok = await this.throttle.attempt(`login:${user.name}`, caller.address, async () => {
      const found = await this.store.users.byName(user.name);
      return verifyPassword(found?.passwordHash, current);
    });
    if (!ok) throw errors.badCredentials('current password is wrong');
    await this.store.users.update(user.id, { passwordHash: await hashPassword(next) });
    await this.endOtherCredentials(user, caller.via);
  }

  /**
   * A password is changed because the old one may have leaked: whoever held it may have
   * logged in or made tokens with it. Every session and token of the user ends, except
   * the credential making the change (when it is the user's own).
   */
  private async endOtherCredentials(user: User, keep: Caller | undefined): Promise<void> {
    await this.store.sessions.deleteForUser(user.id, keep?.kind === 'session' ? keep.sessionHash : undefined);
    await this.store.tokens.revokeForUser(user.id, keep?.kind === 'token' ? keep.tokenId : undefined);
  }

  async delete(name: string): Promise<void> {
    const user = await this.get(name);
    if (user.role === 'admin' && (await this.store.users.countAdmins()) <= 1) {
      throw errors.lastAdmin('cannot delete the last admin');
    }
    await this.store.users.delete(user.id);
  }
}
