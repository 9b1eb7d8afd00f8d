// The browser's half of WebAuthn: the server's options (base64url strings, as
// @simplewebauthn/server makes them) to navigator.credentials' buffers, and the credential
// it returns back to the JSON the API takes (src/http/routes/passkeys.ts).

export const b64urlToBytes = (s) => {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
};

export const bytesToB64url = (buf) => {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

const descriptor = (d) => ({ ...d, id: b64urlToBytes(d.id) });

/** A credential as the API takes it: its ids, `response` (already encoded) and extensions. */
const credentialJson = (cred, response) => ({
  id: cred.id,
  rawId: bytesToB64url(cred.rawId),
  type: cred.type,
  response,
  ...(cred.authenticatorAttachment && { authenticatorAttachment: cred.authenticatorAttachment }),
  clientExtensionResults: cred.getClientExtensionResults(),
});

/** navigator.credentials.create() with the registration options; the credential as JSON. */
export async function createPasskey(options) {
  const publicKey = {
    ...options,
    challenge: b64urlToBytes(options.challenge),
    user: { ...options.user, id: b64urlToBytes(options.user.id) },
    excludeCredentials: (options.excludeCredentials ?? []).map(descriptor),
  };
  const cred = await navigator.credentials.create({ publicKey });
  const r = cred.response;
  return credentialJson(cred, {
    clientDataJSON: bytesToB64url(r.clientDataJSON),
    attestationObject: bytesToB64url(r.attestationObject),
    ...(typeof r.getTransports === 'function' && { transports: r.getTransports() }),
  });
}

/** navigator.credentials.get() with the sign-in options; the assertion as JSON. */
export async function getPasskey(options) {
  const publicKey = {
    ...options,
    challenge: b64urlToBytes(options.challenge),
    allowCredentials: (options.allowCredentials ?? []).map(descriptor),
  };
  const cred = await navigator.credentials.get({ publicKey });
  const r = cred.response;
  return credentialJson(cred, {
    clientDataJSON: bytesToB64url(r.clientDataJSON),
    authenticatorData: bytesToB64url(r.authenticatorData),
    signature: bytesToB64url(r.signature),
    ...(r.userHandle && { userHandle: bytesToB64url(r.userHandle) }),
  });
}
