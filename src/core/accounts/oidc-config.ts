/** Config of OpenID Connect sign-in (`auth.oidc`, one entry per identity provider). */
import { Type, type Static } from '@sinclair/typebox';

export const OidcProviderConfigSchema = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z0-9_-]{1,32}$', description: 'short name, in the callback URL /login/oidc/{id}/callback' }),
    label: Type.Optional(Type.String({ maxLength: 64, description: 'button text on the login page (default: "Sign in with {id}")' })),
    issuer: Type.String({ description: 'issuer URL; its /.well-known/openid-configuration is read on first use' }),
    clientId: Type.String(),
    clientSecret: Type.Optional(Type.String({ secret: true, description: 'absent for a public client (PKCE only)' })),
    scopes: Type.String({ default: 'openid profile email', description: 'space-separated; must include openid' }),
    usernameClaim: Type.String({ default: 'preferred_username', description: 'ID token claim that becomes the corral user name' }),
    groupsClaim: Type.String({ default: 'groups', description: 'ID token claim listing the user\'s groups' }),
    allowedDomains: Type.Optional(Type.Array(Type.String(), { description: 'only verified emails in these domains may sign in' })),
    allowedGroups: Type.Optional(Type.Array(Type.String(), { description: 'only members of one of these groups may sign in' })),
    adminGroups: Type.Array(Type.String(), { default: [], description: 'members are admins; when set, others are not' }),
    linkExistingUsers: Type.Boolean({
      default: false,
      description: 'a first sign-in whose user name is an existing local user signs in as that user (else it is refused)',
    }),
    allowHttp: Type.Boolean({ default: false, description: 'allow an http:// issuer (a provider on loopback in tests only)' }),
  },
  { additionalProperties: false },
);
export type OidcProviderConfig = Static<typeof OidcProviderConfigSchema>;
