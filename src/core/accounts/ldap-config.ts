/**
 * `auth.ldap`: one LDAP directory whose users sign in with the password form and
 * `POST /api/v1/login` (core/accounts/ldap.ts). Either `userDn` (bind as the user with a DN
 * made from the name) or `userBase` (search for the user, as `bindDn` or anonymously, then
 * bind as the entry found).
 */
import { Type, type Static } from '@sinclair/typebox';

const Seconds = (def: number, description: string) => Type.Number({ exclusiveMinimum: 0, maximum: 120, default: def, description });

export const LdapConfigSchema = Type.Object(
  {
    url: Type.String({ pattern: '^ldaps?://[^/?#\\s]+/?$', description: 'ldap://host:389 or ldaps://host:636' }),
    startTLS: Type.Boolean({ default: false, description: 'upgrade an ldap:// connection with StartTLS before binding' }),
    caFile: Type.Optional(Type.String({ description: 'PEM file of the CA(s) the server certificate must chain to (default: the system\'s)' })),
    rejectUnauthorized: Type.Boolean({ default: true, description: 'false: accept any server certificate (tests only)' }),
    userDn: Type.Optional(
      Type.String({ description: 'bind as the user: a DN template, e.g. uid={username},ou=people,dc=example,dc=org' }),
    ),
    bindDn: Type.Optional(Type.String({ description: 'search-then-bind: the service account that searches (absent: anonymous)' })),
    bindPassword: Type.Optional(Type.String({ secret: true, description: 'password of bindDn' })),
    userBase: Type.Optional(Type.String({ description: 'search-then-bind: where users are searched for (subtree)' })),
    userFilter: Type.String({ default: '(uid={username})', description: 'search-then-bind: finds the one entry of a name' }),
    usernameAttribute: Type.String({ default: 'uid', description: 'attribute of the user entry that becomes the corral user name' }),
    groupBase: Type.Optional(Type.String({ description: 'where groups are searched for (absent: no groups)' })),
    groupFilter: Type.String({ default: '(member={dn})', description: 'the groups of a user; {dn} and {username} are replaced' }),
    groupAttribute: Type.String({ default: 'cn', description: 'attribute of a group entry that names it' }),
    allowedGroups: Type.Optional(Type.Array(Type.String(), { description: 'only members of one of these groups may sign in' })),
    adminGroups: Type.Array(Type.String(), { default: [], description: 'members are admins; when set, others are not' }),
    linkExistingUsers: Type.Boolean({
      default: false,
      description: 'a first sign-in whose user name is an existing corral user signs in as that user (else it is refused)',
    }),
    createUsers: Type.Boolean({ default: true, description: 'false: only users that already exist in corral (linked or linkable) may sign in' }),
    connectTimeoutSeconds: Seconds(5, 'give up connecting to the server after this long'),
    timeoutSeconds: Seconds(5, 'give up on one LDAP operation (bind, search) after this long'),
  },
  { additionalProperties: false },
);
export type LdapConfig = Static<typeof LdapConfigSchema>;

/** What the schema cannot say: exactly one way of finding the user's DN. */
export function ldapConfigProblem(c: LdapConfig): string | undefined {
  if (!!c.userDn === !!c.userBase) return 'set exactly one of userDn (bind as the user) and userBase (search, then bind)';
  if (c.userDn && !c.userDn.includes('{username}')) return 'userDn must contain {username}';
  if (c.userBase && !c.userFilter.includes('{username}')) return 'userFilter must contain {username}';
  if (!!c.bindDn !== !!c.bindPassword) return 'bindDn and bindPassword go together';
  if (c.startTLS && c.url.startsWith('ldaps:')) return 'startTLS is for ldap:// URLs (ldaps:// is TLS already)';
  return undefined;
}
