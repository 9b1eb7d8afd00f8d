import { hash, verify } from '@node-rs/argon2';

// argon2id with the OWASP-recommended minimum: 19 MiB, 2 passes.
const OPTIONS = { algorithm: 2 /* Argon2id */, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export const hashPassword = (password: string): Promise<string> => hash(password, OPTIONS);

// Verified against when the user does not exist, so a login for an unknown name costs as much
// time as one for a known name and timing does not reveal which names exist.
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(storedHash: string | undefined, password: string): Promise<boolean> {
  const target = storedHash ?? (await (dummyHash ??= hashPassword('corral-timing-equaliser')));
  const ok = await verify(target, password).catch(() => false);
  return ok && storedHash !== undefined;
}
