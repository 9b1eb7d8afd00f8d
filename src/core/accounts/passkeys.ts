/**
 * Passkeys (WebAuthn, with @simplewebauthn/server): a signed-in user registers credentials
 * and later signs in with one instead of a password.
 *
 * - Registration: options (a fresh challenge kept server-side, bound to the login session
 *   asking) → the browser's attestation → verified against that challenge, the main origin
 *   and its host as RP ID; the credential's public key and signature counter are stored.
 * - Sign-in: options (a challenge bound to a ticket the browser holds in an HttpOnly cookie;
 *   no user name: discoverable credentials) → the assertion, verified against the stored
 *   key; the counter must move forward (a cloned authenticator is refused), and is written
 *   only if it has not moved meanwhile. A failed assertion counts in the same throttle as a
 *   failed password (subject `login:{name}`, or `passkey:{credential id}` when unknown).
 * - User verification is preferred, not required (a security key without a PIN still works).
 * - `auth.passkeys.require`: who must sign in with a passkey (see `passwordSignIn`).
 */
import { randomBytes } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { Type, type Static } from '@sinclair/typebox';
import { isUniqueViolation } from '../../store/dialect.js';
import type { Store } from '../../store/index.js';
import { PasskeyStore, type PasskeyRow } from '../../store/passkeys.js';
import { errors } from '../errors.js';
import type { GroupService } from './groups.js';
import { Ceremonies } from './ceremonies.js';
import type { PasskeysConfig } from './passkeys-config.js';
import type { LoginThrottle } from './throttle.js';
import type { User } from './types.js';

/**
 * @simplewebauthn/server (with its ASN.1 and X.509 libraries) is loaded at the first ceremony:
 * it took ~25 MB of every server's memory from the start, used or not (docs/instances.md, Scale).
 */
let webauthnLib: Promise<typeof import('@simplewebauthn/server')> | undefined;
const webauthn = () => (webauthnLib ??= import('@simplewebauthn/server'));

export const PasskeyName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[^\\u0000-\\u001f\\u007f]+$', description: 'a label of your choice' });

export const PasskeyInfoSchema = Type.Object({
  id: Type.String({ description: 'the credential id (base64url)' }),
  name: Type.String(),
  transports: Type.Array(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
export type PasskeyInfo = Static<typeof PasskeyInfoSchema>;

/** Where WebAuthn ceremonies happen: the main origin, its host name as the RP ID. */
export interface RelyingParty {
  id: string;
  origin: string;
}

const info = (p: PasskeyRow): PasskeyInfo => ({
  id: p.id,
  name: p.name,
  transports: p.transports,
  createdAt: new Date(p.createdAt).toISOString(),
  lastUsedAt: p.lastUsedAt === null ? null : new Date(p.lastUsedAt).toISOString(),
});

/** How long a registration or sign-in may take between its two requests. */
const CHALLENGE_TTL_MS = 5 * 60_000;

/** The WebAuthn user handle: the user's id, never their name (it may change). */
const userHandle = (user: { id: string }) => new TextEncoder().encode(user.id);

export class PasskeyService {
  private readonly store: PasskeyStore;
  private readonly challenges: Ceremonies;
  private relyingParty: (() => RelyingParty) | undefined;

  constructor(
    private readonly main: Store,
    private readonly config: PasskeysConfig,
    private readonly groups: GroupService,
    private readonly throttle: LoginThrottle,
  ) {
    this.store = new PasskeyStore(main.db);
    this.challenges = new Ceremonies(main.ceremonies);
  }

  /** The http layer says where the main origin is (it follows the port really listened on). */
  useOrigin(mainOrigin: () => URL): void {
    this.relyingParty = () => {
      const u = mainOrigin();
      return { id: u.hostname, origin: u.origin };
    };
  }

  get enabled(): boolean {
    return this.config.enabled;
  }

  private rp(): RelyingParty {
    if (!this.relyingParty) throw new Error('PasskeyService.useOrigin was not called');
    if (!this.config.enabled) throw errors.passkeysOff('passkeys are turned off here (auth.passkeys.enabled)');
    return this.relyingParty();
  }

  async list(user: User): Promise<PasskeyInfo[]> {
    return (await this.store.ofUser(user.id)).map(info);
  }

  async rename(user: User, id: string, name: string): Promise<PasskeyInfo> {
    if (!(await this.store.rename(user.id, id, name))) throw errors.passkeyNotFound(id);
    return info((await this.store.byId(id))!);
  }

  async delete(user: User, id: string): Promise<void> {
    if (!(await this.store.delete(user.id, id))) throw errors.passkeyNotFound(id);
  }

  /**
   * An admin's recovery for a user who lost their passkeys: all of them go, so (when one is
   * required) their password gives an enrolment session again. Returns how many went.
   */
  removeAll(user: User): Promise<number> {
    return this.store.deleteAllOf(user.id);
  }

  /** Begins a registration for the user of session `sessionHash`. */
  async registrationOptions(user: User, sessionHash: string): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const rp = this.rp();
    const existing = await this.store.ofUser(user.id);
    const { generateRegistrationOptions } = await webauthn();
    const options = await generateRegistrationOptions({
      rpName: this.config.rpName,
      rpID: rp.id,
      userName: user.name,
      userID: userHandle(user),
      attestationType: 'none',
      // Already registered authenticators are not asked to make a second credential.
      excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports })),
      // Discoverable, so the login page needs no user name.
      authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
    });
    await this.challenges.put(`register|${sessionHash}`, options.challenge, CHALLENGE_TTL_MS);
    return options;
  }

  /** Ends a registration: the response must answer the challenge this same session was given. */
  async register(user: User, sessionHash: string, response: RegistrationResponseJSON, name: string | undefined): Promise<PasskeyInfo> {
    const rp = this.rp();
    const challenge = await this.challenges.take(`register|${sessionHash}`);
    if (!challenge) throw errors.passkeyInvalid('no registration is under way for this session (it expired or was used): start again');
    const { verifyRegistrationResponse } = await webauthn();
    let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      verified = await verifyRegistrationResponse({ response, expectedChallenge: challenge, expectedOrigin: rp.origin, expectedRPID: rp.id, requireUserVerification: false });
    } catch (e) {
      throw errors.passkeyInvalid(`the passkey could not be verified: ${(e as Error).message}`);
    }
    if (!verified.verified) throw errors.passkeyInvalid('the passkey could not be verified');
    const { credential } = verified.registrationInfo;
    const count = await this.store.countOf(user.id);
    const row = {
      id: credential.id,
      userId: user.id,
      publicKey: credential.publicKey,
      counter: credential.counter,
      transports: credential.transports ?? [],
      name: name ?? `Passkey ${count + 1}`,
      createdAt: Date.now(),
    };
    try {
      await this.store.insert(row);
    } catch (e) {
      if (isUniqueViolation(e)) throw errors.passkeyInvalid('this credential is already registered');
      throw e;
    }
    // Proving a new passkey is as strong as signing in with it: the session becomes a full one.
    await this.store.markSession(sessionHash);
    return info({ ...row, lastUsedAt: null });
  }

  /** Begins a sign-in: the options, and the ticket the browser keeps (a cookie) to end it. */
  async loginOptions(): Promise<{ options: PublicKeyCredentialRequestOptionsJSON; ticket: string }> {
    const rp = this.rp();
    const { generateAuthenticationOptions } = await webauthn();
    const options = await generateAuthenticationOptions({ rpID: rp.id, userVerification: 'preferred' });
    const ticket = randomBytes(24).toString('base64url');
    await this.challenges.put(`login|${ticket}`, options.challenge, CHALLENGE_TTL_MS);
    return { options, ticket };
  }

  /**
   * Ends a sign-in: the assertion must answer the ticket's challenge (once), come from a
   * registered credential, and carry a valid signature and a counter that moved forward.
   * Throttled like a password; throws `passkey_refused` (401) or 429.
   */
  async login(ticket: string | undefined, response: AuthenticationResponseJSON, address: string): Promise<User> {
    const rp = this.rp();
    const challenge = ticket ? await this.challenges.take(`login|${ticket}`) : undefined;
    const passkey = await this.store.byId(response.id);
    const owner = passkey && (await this.main.users.byId(passkey.userId));
    const subject = owner ? `login:${owner.name}` : `passkey:${response.id}`;
    const { verifyAuthenticationResponse } = await webauthn();
    const ok = await this.throttle.attempt(subject, address, async () => {
      if (!challenge || !passkey || !owner) return false;
      // The authenticator's user handle (when it sends one) must be the credential's owner.
      if (response.response.userHandle && response.response.userHandle !== Buffer.from(userHandle(owner)).toString('base64url')) return false;
      try {
        const { verified, authenticationInfo } = await verifyAuthenticationResponse({
          response,
          expectedChallenge: challenge,
          expectedOrigin: rp.origin,
          expectedRPID: rp.id,
          credential: { id: passkey.id, publicKey: passkey.publicKey, counter: passkey.counter, transports: passkey.transports },
          requireUserVerification: false,
        });
        return verified && (await this.store.used(passkey.id, passkey.counter, authenticationInfo.newCounter, Date.now()));
      } catch {
        return false; // a bad signature, a counter that went back, a foreign origin…
      }
    });
    if (!ok || !owner) {
      throw errors.passkeyRefused(challenge ? 'this passkey is not accepted here' : 'the passkey sign-in expired or was already used: start again');
    }
    return owner;
  }

  /** Marks a login session as begun with a passkey. */
  markSession(sessionHash: string): Promise<void> {
    return this.store.markSession(sessionHash);
  }

  /** Whether `auth.passkeys.require` applies to the user. */
  async required(user: User): Promise<boolean> {
    const { require, requireGroups } = this.config;
    if (!this.config.enabled) return false;
    if (require === 'everyone' || (require === 'admins' && user.role === 'admin')) return true;
    if (!requireGroups.length) return false;
    const mine = await this.groups.of(user.id);
    return requireGroups.some((g) => mine.includes(g));
  }

  /**
   * What a password sign-in gives a user: a full session when passkeys are not required of
   * them; when they are, a session that may only register a passkey (`enrolmentOnly`) while
   * they have none, and nothing once they have one (they must use it).
   */
  async passwordSignIn(user: User): Promise<{ enrolmentOnly: boolean }> {
    if (!(await this.required(user))) return { enrolmentOnly: false };
    if ((await this.store.countOf(user.id)) > 0) throw errors.passkeyRequired('sign in with your passkey: a password alone is not enough for this account');
    return { enrolmentOnly: true };
  }

  /** Whether a session of `user` may do everything (false: only register a passkey). */
  async sessionIsFull(user: User, sessionHash: string): Promise<boolean> {
    if (!(await this.required(user))) return true;
    return this.store.isPasskeySession(sessionHash);
  }
}
