/**
 * What a new password must not be, after NIST SP 800-63B §3.1.1.2: at least 8 characters
 * (the schema's `Password`), and not a value known to be common or breached, nor one that
 * names the account or the service. No composition rules (they make passwords worse).
 *
 * The breached list is zxcvbn-ts's common-password dictionary (@zxcvbn-ts/language-common:
 * 49,233 passwords ranked by how often they appear in public breach corpora), shipped with
 * the package and checked offline; loaded on first use.
 */
import { errors } from '../errors.js';

let common: Promise<Set<string>> | undefined;

const commonPasswords = (): Promise<Set<string>> =>
  (common ??= import('@zxcvbn-ts/language-common').then(({ dictionary }) => new Set(dictionary['passwords-common'])));

/** Why `password` is refused for the account `userName`, or undefined when it may be used. */
export async function passwordProblem(password: string, userName: string): Promise<string | undefined> {
  const lower = password.toLowerCase();
  if ((await commonPasswords()).has(lower)) return 'is on the list of common and breached passwords; choose another';
  // The name of the account or of the service, alone or with digits and punctuation around it.
  const bare = withoutDecoration(lower);
  if (bare && (bare === withoutDecoration(userName.toLowerCase()) || bare === 'corral')) {
    return 'is the user name or the name of this service (with digits or punctuation at most); choose another';
  }
  if (new Set(lower).size === 1) return 'repeats one character; choose another';
  if (isRun(lower)) return 'is a run of consecutive characters; choose another';
  return undefined;
}

/** Throws 400 `weak_password` naming `field` when the password may not be used. */
export async function checkNewPassword(password: string, userName: string, field = 'password'): Promise<void> {
  const problem = await passwordProblem(password, userName);
  if (problem) throw errors.weakPassword(`body.${field}: ${problem}`, { details: { field } });
}

const withoutDecoration = (s: string) => s.replace(/[\d\s\p{P}\p{S}]/gu, '');

/** "abcdefgh", "98765432": each character one after (or before) the previous one. */
function isRun(s: string): boolean {
  const step = s.charCodeAt(1) - s.charCodeAt(0);
  if (Math.abs(step) !== 1) return false;
  for (let i = 2; i < s.length; i++) if (s.charCodeAt(i) - s.charCodeAt(i - 1) !== step) return false;
  return true;
}
