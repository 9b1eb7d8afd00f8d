/** Users: creation, the first admin, password checks with throttling, role and password changes. */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Store } from '../../store/index.js';
import { errors } from '../errors.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { LoginThrottle } from './throttle.js';
import type { Role, User } from './types.js';

export class UserService {
  constructor(
    private readonly store: Store,
    private readonly throttle: LoginThrottle,
  ) {}

  async create(req: { name: string; password: string; role?: Role | undefined; credits?: number | undefined }): Promise<User> {
    if (await this.store.users.byName(req.name)) throw errors.userExists(req.name);
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
    const generated = password ? undefined : randomBytes(18).toString('base64url');
    const existing = await this.store.users.byName('admin');
    if (existing) {
      await this.store.users.update(existing.id, { role: 'admin', passwordHash: await hashPassword(password ?? generated!) });
    } else {
      await this.create({ name: 'admin', password: password ?? generated!, role: 'admin' });
    }
    return generated ? { generatedPassword: generated } : {};
  }

  /** Checks a name and password; throttled per name and per client address. */
  async verifyLogin(name: string, password: string, address: string): Promise<User> {
    this.throttle.check(name, address);
    const found = await this.store.users.byName(name);
    if (!(await verifyPassword(found?.passwordHash, password)) || !found) {
      this.throttle.failed(name, address);
      throw errors.badCredentials('wrong user name or password');
    }
    this.throttle.succeeded(name);
    const { passwordHash: _, ...user } = found;
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

  async update(name: string, patch: { role?: Role | undefined; password?: string | undefined }): Promise<User> {
    const user = await this.get(name);
    if (patch.role === 'user' && user.role === 'admin' && (await this.store.users.countAdmins()) <= 1) {
      throw errors.lastAdmin('cannot demote the last admin');
    }
    await this.store.users.update(user.id, {
      ...(patch.role && { role: patch.role }),
      ...(patch.password && { passwordHash: await hashPassword(patch.password) }),
    });
    // A password reset is often because the old one leaked: its login sessions end too.
    if (patch.password) await this.store.sessions.deleteForUser(user.id);
    return this.get(name);
  }

  /**
   * A user changing their own password must give the current one; wrong guesses count
   * towards the same lock-out as failed logins, so a stolen token cannot brute-force it.
   */
  async changeOwnPassword(user: User, current: string, next: string): Promise<void> {
    this.throttle.check(user.name);
    const found = await this.store.users.byName(user.name);
    if (!(await verifyPassword(found?.passwordHash, current))) {
      this.throttle.failed(user.name);
      throw errors.badCredentials('current password is wrong');
    }
    await this.store.users.update(user.id, { passwordHash: await hashPassword(next) });
  }

  async delete(name: string): Promise<void> {
    const user = await this.get(name);
    if (user.role === 'admin' && (await this.store.users.countAdmins()) <= 1) {
      throw errors.lastAdmin('cannot delete the last admin');
    }
    await this.store.users.delete(user.id);
  }
}
