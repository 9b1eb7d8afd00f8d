/**
 * The one catalogue of errors corral can raise (in the spirit of fastify's lib/errors.js).
 * Every error has a stable `code` clients can match on and the HTTP status the http layer
 * answers with. Callers throw by name: `throw errors.userNotFound(name)`.
 */
export class CorralError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** Extra response headers, e.g. Retry-After on 429. */
    readonly headers: Record<string, string> = {},
    /** Extra fields merged into the error body, e.g. the list of known runtimes. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CorralError';
  }
}

const make =
  (code: string, status: number) =>
  (message: string, extra?: { headers?: Record<string, string>; details?: Record<string, unknown> }) =>
    new CorralError(code, status, message, extra?.headers, extra?.details);

export const errors = {
  // --- requests
  badRequest: make('bad_request', 400),
  validation: make('validation_failed', 400),
  badJson: make('bad_json', 400),
  bodyTooLarge: make('body_too_large', 413),
  headersTooLarge: make('headers_too_large', 431),
  uriTooLong: make('uri_too_long', 414),
  requestTimeout: make('request_timeout', 408),
  unsupportedMediaType: make('unsupported_media_type', 415),
  notFound: make('not_found', 404),
  methodNotAllowed: make('method_not_allowed', 405),
  conflict: make('conflict', 409),

  // --- authentication and authorisation
  unauthenticated: make('unauthenticated', 401),
  badCredentials: make('bad_credentials', 401),
  tokenInvalid: make('token_invalid', 401),
  tokenExpired: make('token_expired', 401),
  tokenRevoked: make('token_revoked', 401),
  forbidden: make('forbidden', 403),
  csrf: make('csrf_token_invalid', 403),
  /** An identity provider's answer corral does not accept (core/accounts/oidc.ts); nothing is created. */
  signInRefused: make('sign_in_refused', 403),
  /** `auth.localPasswords: false`: users sign in through an identity provider only. */
  localPasswordsOff: make('local_passwords_off', 403),
  /** A passkey assertion corral does not accept: unknown credential, bad signature, stale or foreign challenge. */
  passkeyRefused: make('passkey_refused', 401),
  /** A registration response that does not verify (wrong challenge, origin, RP ID…). */
  passkeyInvalid: make('passkey_invalid', 400),
  /** `auth.passkeys.require` applies: sign in with a passkey (or register one first). */
  passkeyRequired: make('passkey_required', 403),
  passkeyNotFound: (id: string) => new CorralError('passkey_not_found', 404, `no passkey "${id}" of yours`),
  /** `auth.passkeys.enabled: false`. */
  passkeysOff: make('passkeys_off', 403),
  /** The LDAP directory (`auth.ldap`) did not answer in time, refused the connection or its TLS; nothing was counted. */
  ldapUnavailable: make('ldap_unavailable', 503),
  tooManyLogins: (retryAfterSeconds: number) =>
    new CorralError('too_many_attempts', 429, `too many failed logins; retry in ${retryAfterSeconds} s`, {
      'retry-after': String(retryAfterSeconds),
    }),

  // --- accounts
  groupNotFound: (name: string) => new CorralError('group_not_found', 404, `no group "${name}" (nobody is in it and it has no quotas)`),
  userNotFound: (name: string) => new CorralError('user_not_found', 404, `no user named "${name}"`),
  userExists: (name: string) => new CorralError('user_exists', 409, `a user named "${name}" already exists`),
  tokenNotFound: (id: string) => new CorralError('token_not_found', 404, `no token with id "${id}"`),
  tokenNameExists: (name: string) => new CorralError('token_exists', 409, `a token named "${name}" already exists`),
  lastAdmin: make('last_admin', 409),
  /** A new password that is common, breached, or names the account (core/accounts/password-policy.ts). */
  weakPassword: make('weak_password', 400),

  // --- capacity, credits and quotas
  busy: (retryAfterSeconds: number, message: string) =>
    new CorralError('busy', 429, message, { 'retry-after': String(retryAfterSeconds) }),
  /** A per-user quota (see core/credits/quotas.ts); the body names it and its value. */
  quotaExceeded: (quota: string, limit: number, message: string) =>
    new CorralError('quota_exceeded', 403, message, {}, { quota, limit }),
  /** The same for quotas that free up by themselves (concurrent jobs): 429, retry soon. */
  quotaBusy: (quota: string, limit: number, message: string) =>
    new CorralError('quota_exceeded', 429, message, { 'retry-after': '1' }, { quota, limit }),
  outOfCredits: make('out_of_credits', 402),

  // --- workloads
  instanceNotFound: (id: string) => new CorralError('instance_not_found', 404, `no instance "${id}"`),
  instanceExists: (name: string) => new CorralError('instance_exists', 409, `an instance named "${name}" already exists`),
  invalidState: make('invalid_state', 409),
  jobNotFound: (id: string) => new CorralError('job_not_found', 404, `no job "${id}"`),
  /** golem-herder's controlled minions: the old herder answered a minion past its deadline with 500. */
  minionTimeout: make('minion_timeout', 500),
  unknownRuntime: (name: string, known: string[]) =>
    new CorralError('unknown_runtime', 400, `runtime: unknown runtime "${name}"; known: ${known.join(', ') || 'none'}`, {}, { known, field: 'runtime' }),
  badFile: make('bad_file', 400),
  badArchive: make('bad_archive', 400),
  sourceRefused: make('source_refused', 400),
  sourceTooLarge: make('source_too_large', 413),
  /** A download or unpack ended because its instance is being deleted or the server stops. */
  sourceCancelled: make('source_cancelled', 409),
  downloadFailed: make('download_failed', 502),
  noProcfile: make('no_procfile', 400),
  procfileInvalid: make('procfile_invalid', 400),
  unknownProcessType: (type: string, known: string[]) =>
    new CorralError('unknown_process_type', 400, `the Procfile has no process type "${type}"; known: ${known.join(', ') || 'none'}`, {}, { known }),
  driverUnavailable: make('driver_unavailable', 503),
  imageNotAllowed: (image: string) =>
    new CorralError('image_not_allowed', 403, `image "${image}" is not on this server's allow-list (drivers.docker.images)`, {}, { image }),
  imageMissing: make('image_missing', 400),
  upstreamUnavailable: make('upstream_unavailable', 502),

  // --- apps (releases, switches, formation)
  appNotFound: (name: string) => new CorralError('app_not_found', 404, `no app "${name}"`),
  releaseNotFound: (app: string, version: number) =>
    new CorralError('release_not_found', 404, `app "${app}" has no release v${version}`, {}, { field: 'version' }),
  /** A release that did not get to serve; the body carries its state, exit code and last log lines. */
  deployFailed: (message: string, details: Record<string, unknown>) => new CorralError('deploy_failed', 422, message, {}, details),

  // --- relay
  relayHostConnected: make('relay_host_connected', 409),
  relayPeerNotFound: (id: string) => new CorralError('relay_peer_not_found', 404, `no peer "${id}" waiting on this channel`),
  relayPeerPaired: make('relay_peer_paired', 409),
  relayChannelFull: make('relay_channel_full', 429),
  /** A channel's host side belongs to the user whose host claimed it (docs/relay.md). */
  relayChannelOwned: make('relay_channel_owned', 403),

  // --- the server
  config: make('config_invalid', 500),
  /** A listener's port is taken, or not this user's to take, or its host is not this machine's (src/server.ts). */
  cannotListen: make('cannot_listen', 500),
  managerUnavailable: make('manager_unavailable', 502), // proxy role: its manager did not answer
  managerTimeout: make('manager_timeout', 504),
  internal: make('internal', 500),
  /** The data disk (or the database's) is full: nothing can be written until space is freed. */
  diskFull: make('disk_full', 507),
  /** /readyz: the server cannot serve (the database does not answer, or cannot write). */
  notReady: make('not_ready', 503),
} as const;

export function isCorralError(e: unknown): e is CorralError {
  return e instanceof CorralError;
}
