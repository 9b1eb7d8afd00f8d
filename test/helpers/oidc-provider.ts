/**
 * A real OpenID provider (`oidc-provider`, a certified implementation) on 127.0.0.1 for
 * sign-in tests. Its login page (dev interactions) accepts any password for the accounts
 * given; consent is granted automatically. `tamper` rewrites the ID token the token
 * endpoint returns (re-signed with the provider's own key, or another one) so each of
 * corral's checks — issuer, audience, expiry, nonce, signature — can be attacked alone.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, decodeJwt, type JWTPayload } from 'jose';
import Provider from 'oidc-provider';

export type Claims = Record<string, unknown>;

export interface TestOidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Set before a sign-in; cleared with undefined. */
  tamper: { claims?: (c: JWTPayload) => JWTPayload; foreignKey?: boolean } | undefined;
  /** Once corral listens: its callback URL is the client's only redirect URI. */
  configure(redirectUri: string): Promise<void>;
  close(): Promise<void>;
}

export async function startOidcProvider(accounts: Record<string, Claims>): Promise<TestOidcProvider> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const foreign = (await generateKeyPair('RS256')).privateKey;
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (!handler) return void res.writeHead(503).end();
    if (req.method === 'POST' && req.url?.startsWith('/token') && t.tamper) interceptToken(res);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  /** Buffers the token response, rewrites its id_token, then sends it. */
  function interceptToken(res: ServerResponse): void {
    const end = res.end.bind(res);
    const tamper = t.tamper!;
    res.end = ((body?: unknown) => {
      void (async () => {
        const json = JSON.parse(String(body)) as { id_token?: string };
        if (json.id_token) {
          const claims = tamper.claims ? tamper.claims(decodeJwt(json.id_token)) : decodeJwt(json.id_token);
          json.id_token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(tamper.foreignKey ? foreign : privateKey);
        }
        const out = JSON.stringify(json);
        res.setHeader('content-length', Buffer.byteLength(out));
        end(out);
      })();
      return res;
    }) as typeof res.end;
  }

  const t: TestOidcProvider = {
    issuer,
    clientId: 'corral',
    clientSecret: 'corral-client-secret-for-tests-0123456789',
    tamper: undefined,
    async configure(redirectUri) {
      const provider = new Provider(issuer, {
        clients: [{ client_id: t.clientId, client_secret: t.clientSecret, redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'] }],
        jwks: { keys: [jwk] },
        cookies: { keys: ['test-cookie-key'] },
        pkce: { required: () => true },
        conformIdTokenClaims: false,
        claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email', 'email_verified'], groups: ['groups'] },
        scopes: ['openid', 'profile', 'email', 'groups'],
        findAccount: (_ctx: unknown, id: string) =>
          accounts[id] && { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) },
        // Consent is not what these tests are about: grant every requested scope.
        loadExistingGrant: async (ctx: { oidc: { client: { clientId: string }; session: { accountId: string }; params: { scope: string }; provider: { Grant: new (o: object) => { addOIDCScope(s: string): void; addOIDCClaims(c: string[]): void; save(): Promise<string> } } } }) => {
          const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
          grant.addOIDCScope(ctx.oidc.params.scope);
          grant.addOIDCClaims(['preferred_username', 'name', 'email', 'email_verified', 'groups']);
          await grant.save();
          return grant;
        },
      });
      handler = provider.callback();
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  return t;
}

/** A tiny cookie jar per origin, for driving the redirect dance without a browser. */
export class CookieJar {
  private readonly jars = new Map<string, Map<string, string>>();

  header(url: string): string {
    return [...(this.jars.get(new URL(url).origin) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  take(url: string, res: Response): void {
    const origin = new URL(url).origin;
    const jar = this.jars.get(origin) ?? new Map<string, string>();
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const [name, value] = [pair!.slice(0, i).trim(), pair!.slice(i + 1)];
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(c)) jar.delete(name);
      else jar.set(name, value);
    }
    this.jars.set(origin, jar);
  }
}

/**
 * Starts a sign-in at `start` (corral's /login/oidc/{id}) and logs in at the provider as
 * `login`; stops at corral's callback URL without following it, so a test can send it
 * (or send it twice, or from another jar).
 */
export async function signInUntilCallback(start: string, login: string, jar = new CookieJar()): Promise<{ callback: string; jar: CookieJar }> {
  let url = start;
  let init: RequestInit = {};
  for (let hop = 0; hop < 20; hop++) {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: jar.header(url) } });
    jar.take(url, res);
    init = {};
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, url).href;
      if (next.includes('/callback?')) return { callback: next, jar };
      url = next;
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (res.status !== 200 || !action || !html.includes('name="login"')) throw new Error(`unexpected ${res.status} at ${url}: ${html.slice(0, 300)}`);
    url = new URL(action.replace(/&amp;/g, '&'), url).href;
    init = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ prompt: 'login', login, password: 'any' }).toString() };
  }
  throw new Error('too many redirects');
}
