/**
 * The key tokens are signed with: an Ed25519 pair kept in the data directory (mode 0600),
 * never in the database, so a copy of the database yields no usable token.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exportJWK, generateKeyPair, importJWK, type JWK, type CryptoKey } from 'jose';

export const TOKEN_ALG = 'EdDSA';

export interface SigningKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/** `name`: the key's file in the data dir (API tokens and identity assertions use different keys). */
export async function loadSigningKey(dataDir: string, name = 'signing-key.json'): Promise<SigningKey> {
  const file = path.join(dataDir, name);
  let jwk: JWK;
  try {
    jwk = JSON.parse(await readFile(file, 'utf8')) as JWK;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const pair = await generateKeyPair(TOKEN_ALG, { crv: 'Ed25519', extractable: true });
    jwk = await exportJWK(pair.privateKey);
    await writeFile(file, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' });
  }
  const { d: _private, ...publicJwk } = jwk;
  return {
    privateKey: (await importJWK(jwk, TOKEN_ALG)) as CryptoKey,
    publicKey: (await importJWK(publicJwk, TOKEN_ALG)) as CryptoKey,
  };
}
