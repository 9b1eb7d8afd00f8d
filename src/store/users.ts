import type { Role, User } from '../core/accounts/types.js';
import type { Db } from './database.js';
import type { UsersTable } from './schema.js';

const toUser = (r: UsersTable): User => ({
  id: r.id,
  name: r.name,
  role: r.role,
  credits: Number(r.credits),
  createdAt: new Date(Number(r.created_at)).toISOString(),
});

export class UserStore {
  constructor(private readonly db: Db) {}

  async insert(u: { id: string; name: string; role: Role; passwordHash: string; credits: number }): Promise<User> {
    const now = Date.now();
    const row: UsersTable = {
      id: u.id,
      name: u.name,
      role: u.role,
      password_hash: u.passwordHash,
      credits: u.credits,
      created_at: now,
      updated_at: now,
    };
    await this.db.insertInto('users').values(row).execute();
    return toUser(row);
  }

  async byName(name: string): Promise<(User & { passwordHash: string }) | undefined> {
    const r = await this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    return r && { ...toUser(r), passwordHash: r.password_hash };
  }

  async byId(id: string): Promise<User | undefined> {
    const r = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toUser(r);
  }

  async list(): Promise<User[]> {
    const rows = await this.db.selectFrom('users').selectAll().orderBy('name').execute();
    return rows.map(toUser);
  }

  async countAdmins(): Promise<number> {
    const r = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('role', '=', 'admin')
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async update(id: string, patch: { role?: Role; passwordHash?: string }): Promise<void> {
    await this.db
      .updateTable('users')
      .set({
        ...(patch.role && { role: patch.role }),
        ...(patch.passwordHash && { password_hash: patch.passwordHash }),
        updated_at: Date.now(),
      })
      .where('id', '=', id)
      .execute();
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
