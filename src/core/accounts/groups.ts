/**
 * Groups: a user's memberships come from sources — each identity provider (`oidc:{id}`,
 * replaced at every sign-in from its groups claim) and `admin` (set through the API or
 * `corral user groups`) — and a user is in a group when any source says so. Instances can
 * be shared with groups through the proxy.
 */
import { Type } from '@sinclair/typebox';
import type { Store } from '../../store/index.js';
import { GroupStore, type Membership } from '../../store/groups.js';

export const GroupName = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: '^[^\\u0000-\\u001f\\u007f]+$',
  description: 'a group name as the identity provider spells it (e.g. "staff" or "/org/staff")',
});

export const ADMIN_SOURCE = 'admin';

export class GroupService {
  private readonly store: GroupStore;

  constructor(store: Store) {
    this.store = new GroupStore(store.db);
  }

  memberships(userId: string): Promise<Membership[]> {
    return this.store.of(userId);
  }

  /** The groups the user is in, whatever the source. */
  async of(userId: string): Promise<string[]> {
    return [...new Set((await this.store.of(userId)).map((m) => m.group))];
  }

  /** Replaces what one source says (a provider at sign-in, or an admin). */
  set(userId: string, source: string, groups: string[]): Promise<void> {
    return this.store.set(userId, source, groups);
  }
}
