/**
 * OpenID Connect sign-in (authorization code + PKCE, openid-client). `begin` makes a fresh
 * state, nonce and PKCE verifier, keeps them server-side bound to one browser, and returns
 * the provider's authorization URL; `finish` takes the callback URL: the state must be one we
 * issued to this browser and is used once (a forged or replayed state is refused), the code
 * is exchanged with the verifier, and the ID token's signature (the provider's JWKS),
 * issuer, audience, expiry and nonce are checked by openid-client. Then the claims are held
 * against the provider's rules (allowed domains and groups) before any user is created or
 * linked, so a refused sign-in leaves nothing behind.
 *
 * Pending sign-ins are kept for ten minutes in the database (ceremonies.ts): the callback
 * may reach any server sharing it.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import { errors, isCorralError } from '../errors.js';
import type { Ceremonies } from './ceremonies.js';
import type { OidcProviderConfig } from './oidc-config.js';
import type { User } from './types.js';
import type { UserService } from './users.js';

const PENDING_TTL_MS = 10 * 60_000;
const PROVIDER_TIMEOUT_SECONDS = 10;
const USER_NAME = /^[a-z0-9_.-]{1,64}$/;

interface Pending {
  provider: string;
  /** sha256 of the browser's binding cookie, base64url: the database never holds the cookie. */
  bindingHash: string;
  nonce: string;
  verifier: string;
  next: string;
}

/** What a sign-in said about the user, after the provider's rules passed. */
export interface OidcIdentity {
  subject: string;
  name: string;
  email: string | undefined;
  groups: string[];
  admin: boolean | undefined;
}

/** openid-client wraps the failed check ("unexpected JWT \"nonce\" claim value") in a generic error. */
function reasonOf(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e; c instanceof Error && parts.length < 3; c = c.cause) parts.push(c.message);
  return parts.join(': ');
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export class OidcSignIn {
  private readonly providers: Map<string, OidcProviderConfig>;
  private readonly discovered = new Map<string, Promise<client.Configuration>>();

  constructor(
    providers: OidcProviderConfig[],
    private readonly users: UserService,
    private readonly pending: Ceremonies,
    /** The main origin, e.g. http://localhost:8080: callbacks come back to it. */
    private readonly origin: () => URL,
  ) {
    this.providers = new Map(providers.map((p) => [p.id, p]));
  }

  list(): { id: string; label: string }[] {
    return [...this.providers.values()].map((p) => ({ id: p.id, label: p.label ?? `Sign in with ${p.id}` }));
  }

  callbackUrl(id: string): string {
    return new URL(`/login/oidc/${encodeURIComponent(id)}/callback`, this.origin()).href;
  }

  /** Returns where to send the browser and the value of its binding cookie. */
  async begin(id: string, next: string): Promise<{ url: string; binding: string }> {
    const provider = this.provider(id);
    const config = await this.configFor(provider);
    const state = client.randomState();
    const binding = randomBytes(24).toString('base64url');
    const p: Pending = {
      provider: id,
      bindingHash: sha256(binding).toString('base64url'),
      nonce: client.randomNonce(),
      verifier: client.randomPKCECodeVerifier(),
      next,
    };
    await this.pending.put(`oidc|${state}`, JSON.stringify(p), PENDING_TTL_MS);
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.callbackUrl(id),
      scope: provider.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(p.verifier),
      code_challenge_method: 'S256',
      state,
      nonce: p.nonce,
    });
    return { url: url.href, binding };
  }

  /**
   * Completes a sign-in from the callback's URL (path and query) and the browser's binding
   * cookie; returns the user (created or linked on first sign-in) and where to go next.
   */
  async finish(id: string, callbackPathAndQuery: string, binding: string | undefined): Promise<{ user: User; next: string }> {
    const provider = this.provider(id);
    const current = new URL(callbackPathAndQuery, this.origin());
    const state = current.searchParams.get('state') ?? '';
    // Taken once, whatever happens next: a replayed callback finds nothing.
    const taken = await this.pending.take(`oidc|${state}`);
    const p = taken === undefined ? undefined : (JSON.parse(taken) as Pending);
    if (!p || p.provider !== id) {
      throw errors.signInRefused('this sign-in link is unknown, already used or expired (state); please sign in again');
    }
    if (!binding || !timingSafeEqual(sha256(binding), Buffer.from(p.bindingHash, 'base64url'))) {
      throw errors.signInRefused('this sign-in was started in another browser (state); please sign in again');
    }
    const providerError = current.searchParams.get('error');
    if (providerError) {
      throw errors.signInRefused(`the identity provider refused: ${current.searchParams.get('error_description') ?? providerError}`);
    }
    const config = await this.configFor(provider);
    let claims: client.IDToken;
    try {
      const tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: p.verifier,
        expectedState: state,
        expectedNonce: p.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims()!;
    } catch (e) {
      throw errors.signInRefused(`the identity provider's answer was not accepted: ${reasonOf(e)}`);
    }
    const identity = this.identityOf(provider, claims);
    return { user: await this.users.signInExternal(`oidc:${id}`, identity, provider.linkExistingUsers), next: p.next };
  }

  /** The provider's rules, applied to a verified ID token. */
  private identityOf(provider: OidcProviderConfig, claims: client.IDToken): OidcIdentity {
    const raw = claims[provider.usernameClaim];
    const name = typeof raw === 'string' ? raw.toLowerCase() : '';
    if (!USER_NAME.test(name)) {
      throw errors.signInRefused(`the claim "${provider.usernameClaim}" is missing or not a valid corral user name`);
    }
    const email = typeof claims.email === 'string' ? claims.email.toLowerCase() : undefined;
    if (provider.allowedDomains?.length) {
      const domain = email?.split('@')[1];
      if (!email || claims.email_verified !== true || !domain || !provider.allowedDomains.some((d) => d.toLowerCase() === domain)) {
        throw errors.signInRefused(`only verified email addresses in ${provider.allowedDomains.join(', ')} may sign in here`);
      }
    }
    const rawGroups = claims[provider.groupsClaim];
    const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string') : [];
    if (provider.allowedGroups?.length && !groups.some((g) => provider.allowedGroups!.includes(g))) {
      throw errors.signInRefused(`only members of ${provider.allowedGroups.join(', ')} may sign in here`);
    }
    const admin = provider.adminGroups.length ? groups.some((g) => provider.adminGroups.includes(g)) : undefined;
    return { subject: claims.sub, name, email, groups, admin };
  }

  private provider(id: string): OidcProviderConfig {
    const p = this.providers.get(id);
    if (!p) throw errors.notFound(`no identity provider "${id}"`);
    return p;
  }

  /** Discovery on first use (the provider may start after corral); a failure is retried next time. */
  private configFor(p: OidcProviderConfig): Promise<client.Configuration> {
    let found = this.discovered.get(p.id);
    if (!found) {
      const execute = [client.enableNonRepudiationChecks, ...(p.allowHttp ? [client.allowInsecureRequests] : [])];
      found = client
        .discovery(new URL(p.issuer), p.clientId, p.clientSecret, p.clientSecret ? undefined : client.None(), {
          execute,
          timeout: PROVIDER_TIMEOUT_SECONDS,
        })
        .then((c) => {
          c.timeout = PROVIDER_TIMEOUT_SECONDS;
          return c;
        })
        .catch((e: unknown) => {
          this.discovered.delete(p.id);
          if (isCorralError(e)) throw e;
          throw errors.upstreamUnavailable(`identity provider "${p.id}" (${p.issuer}) did not answer: ${(e as Error).message}`);
        });
      this.discovered.set(p.id, found);
    }
    return found;
  }

}
