/**
 * Checking a name and password against an LDAP directory (`auth.ldap`, ldapts). One fresh
 * connection per check: StartTLS first when asked, then the user's DN — from the `userDn`
 * template, or found by a search (as the service account or anonymously) that must return
 * exactly one entry — then a simple bind as that DN with the password. A bind that succeeds
 * is the only proof; then the entry's name attribute and entryUUID are read, and the groups
 * searched for. What the user typed is escaped wherever it goes (ldap-escape.ts).
 *
 * Answers: an identity (right password), `undefined` (wrong password, unknown or ambiguous
 * name — indistinguishable to the caller), or `ldap_unavailable` (503) when the server is
 * down, slow, refuses TLS or the service account — within the configured timeouts, never a
 * hang. An empty password never reaches the server: a simple bind with a DN and no password
 * is an *unauthenticated* bind (RFC 4513 §5.1.2) that some servers answer with success.
 *
 * The directory's rules (allowed groups, admin groups) are applied here; creating or linking
 * the corral user is UserService.signInExternal's, the same as for OpenID Connect.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, InvalidDNSyntaxError, NoSuchObjectError, SizeLimitExceededError, type Entry } from 'ldapts';
import { errors, isCorralError } from '../errors.js';
import { ldapConfigProblem, type LdapConfig } from './ldap-config.js';
import { escapeDnValue, escapeFilterValue, fillTemplate } from './ldap-escape.js';
import type { OidcIdentity } from './oidc.js';

/** The membership source and identity-link provider of directory users. */
export const LDAP_SOURCE = 'ldap';
const USER_NAME = /^[a-z0-9_.-]{1,64}$/;

/** What the directory said about a user whose password was right (same shape as OIDC's). */
export type LdapIdentity = OidcIdentity;

/** The password was wrong, or no single entry has that name. */
class NoMatch extends Error {}

const first = (v: Entry[string] | undefined): string | undefined => {
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
};
const all = (v: Entry[string] | undefined): string[] =>
  (Array.isArray(v) ? v : v === undefined ? [] : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));

export class LdapDirectory {
  private readonly tls: ConnectionOptions;
  private readonly host: string;

  constructor(private readonly config: LdapConfig) {
    const problem = ldapConfigProblem(config);
    if (problem) throw errors.config(`auth.ldap: ${problem}`);
    let ca: Buffer | undefined;
    if (config.caFile) {
      try {
        ca = readFileSync(config.caFile);
      } catch (e) {
        throw errors.config(`auth.ldap.caFile: cannot read ${config.caFile}: ${(e as Error).message}`);
      }
    }
    this.host = new URL(config.url).hostname.replace(/^\[|\]$/g, '');
    // `host` is what StartTLS checks the certificate against (ldapts passes none of its own).
    this.tls = { ...(ca && { ca }), rejectUnauthorized: config.rejectUnauthorized, host: this.host };
  }

  /** May a first sign-in take over the corral user of the same name? (auth.ldap.linkExistingUsers) */
  get linkExistingUsers(): boolean {
    return this.config.linkExistingUsers;
  }

  /** May a first sign-in create its corral user? (auth.ldap.createUsers) */
  get createUsers(): boolean {
    return this.config.createUsers;
  }

  /**
   * The identity behind a right password; `undefined` for a wrong one (or an unknown name).
   * Throws `ldap_unavailable` when the directory cannot answer, `sign_in_refused` when its
   * entry breaks the rules (not in an allowed group, a name corral cannot use).
   */
  async authenticate(name: string, password: string): Promise<LdapIdentity | undefined> {
    if (!password || !name) return undefined;
    const { connectTimeoutSeconds, timeoutSeconds } = this.config;
    const client = new Client({
      url: this.config.url,
      connectTimeout: connectTimeoutSeconds * 1000,
      timeout: timeoutSeconds * 1000,
      // ldapts speaks TLS from the first byte whenever it is given TLS options: ldaps:// only.
      ...(this.config.url.startsWith('ldaps:') && { tlsOptions: this.tls }),
    });
    // Each operation has its own timeout; this bounds the whole exchange (a stalled TLS
    // handshake included) so a sign-in never waits longer than the two settings together.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(errors.ldapUnavailable(`the LDAP server ${this.config.url} did not answer within ${connectTimeoutSeconds + timeoutSeconds} s`)),
        (connectTimeoutSeconds + timeoutSeconds) * 1000,
      );
    });
    try {
      return await Promise.race([this.exchange(client, name, password), deadline]);
    } catch (e) {
      if (e instanceof NoMatch) return undefined;
      if (isCorralError(e)) throw e;
      throw errors.ldapUnavailable(`the LDAP server ${this.config.url} could not be used: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
      client.unbind().catch(() => undefined);
    }
  }

  private async exchange(client: Client, name: string, password: string): Promise<LdapIdentity> {
    const c = this.config;
    if (c.startTLS) await client.startTLS({ ...this.tls });
    let dn: string;
    let entry: Entry | undefined;
    if (c.userDn) {
      dn = fillTemplate(c.userDn, { username: name }, escapeDnValue);
    } else {
      await this.bindService(client);
      entry = await this.findUser(client, name);
      dn = entry.dn;
    }
    await bindOrNoMatch(client, dn, password);
    // As the user: their own entry (a directory may hide it from them; then what we have).
    entry ??= await client
      .search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: [c.usernameAttribute, 'entryUUID'] })
      .then((r) => r.searchEntries[0])
      .catch(() => undefined);
    const groups = c.groupBase ? await this.groupsOf(client, dn, name) : [];
    return this.identityOf(dn, entry, name, groups);
  }

  private async bindService(client: Client): Promise<void> {
    if (!this.config.bindDn) return;
    try {
      await client.bind(this.config.bindDn, this.config.bindPassword);
    } catch (e) {
      // The service account's password is the admin's to fix, not the user's: not a 401.
      if (e instanceof InvalidCredentialsError) throw errors.ldapUnavailable('the LDAP service account (auth.ldap.bindDn) was refused by the server');
      throw e;
    }
  }

  /** Search-then-bind: the one entry the filter finds for this name. */
  private async findUser(client: Client, name: string): Promise<Entry> {
    const c = this.config;
    try {
      const { searchEntries } = await client.search(c.userBase!, {
        scope: 'sub',
        filter: fillTemplate(c.userFilter, { username: name }, escapeFilterValue),
        attributes: [c.usernameAttribute, 'entryUUID'],
        sizeLimit: 2,
      });
      // None, or several (an ambiguous name must not pick one at random).
      if (searchEntries.length !== 1) throw new NoMatch();
      return searchEntries[0]!;
    } catch (e) {
      if (e instanceof SizeLimitExceededError || e instanceof NoSuchObjectError) throw new NoMatch();
      throw e;
    }
  }

  private async groupsOf(client: Client, dn: string, name: string): Promise<string[]> {
    const c = this.config;
    // The service account, when there is one, may read groups the user may not.
    await this.bindService(client);
    const { searchEntries } = await client.search(c.groupBase!, {
      scope: 'sub',
      filter: fillTemplate(c.groupFilter, { dn, username: name }, escapeFilterValue),
      attributes: [c.groupAttribute],
    });
    return [...new Set(searchEntries.flatMap((e) => all(e[c.groupAttribute])))];
  }

  private identityOf(dn: string, entry: Entry | undefined, typed: string, groups: string[]): LdapIdentity {
    const c = this.config;
    const name = (first(entry?.[c.usernameAttribute]) ?? typed).toLowerCase();
    if (!USER_NAME.test(name)) {
      throw errors.signInRefused(`the directory's ${c.usernameAttribute} "${name}" is not a valid corral user name (a-z0-9_.-, at most 64)`);
    }
    if (c.allowedGroups?.length && !groups.some((g) => c.allowedGroups!.includes(g))) {
      throw errors.signInRefused(`only members of ${c.allowedGroups.join(', ')} may sign in here`);
    }
    const admin = c.adminGroups.length ? groups.some((g) => c.adminGroups.includes(g)) : undefined;
    // entryUUID survives a rename (a DN does not); a directory without it gets the DN.
    return { subject: first(entry?.entryUUID) ?? dn.toLowerCase(), name, email: undefined, groups, admin };
  }
}

async function bindOrNoMatch(client: Client, dn: string, password: string): Promise<void> {
  try {
    await client.bind(dn, password);
  } catch (e) {
    if (e instanceof InvalidCredentialsError || e instanceof InvalidDNSyntaxError || e instanceof NoSuchObjectError) throw new NoMatch();
    throw e;
  }
}
