/**
 * "Did you mean …?" for a mistyped key: the known key nearest to what was typed, or nothing
 * when none is near enough to be a guess worth printing. `jobs.timeout` finds
 * `jobs.maxTimeoutSeconds` (a word of it), `jbos` finds `jobs` (a typo), and `proxy.port`
 * finds `port` (a key under the wrong parent).
 */

/** Optimal string alignment distance: insertions, deletions, substitutions, swaps of neighbours. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** `maxTimeoutSeconds` → max, timeout, seconds. */
const words = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length >= 3);

/** How far `typed` is from `known` (lower is nearer), or undefined when too far to suggest. */
function distance(typed: string, known: string, typosOnly = false): number | undefined {
  const a = typed.toLowerCase();
  const b = known.toLowerCase();
  const d = editDistance(a, b);
  if (d <= Math.max(1, Math.floor(Math.max(a.length, b.length) / 3))) return d;
  if (typosOnly) return undefined;
  // A shorter or longer spelling of the same thing: timeout ⊂ maxTimeoutSeconds.
  if (a.length >= 3 && b.length >= 3 && (b.includes(a) || a.includes(b))) return 10 + Math.abs(a.length - b.length) / 100;
  const shared = words(typed).filter((w) => words(known).includes(w)).length;
  if (shared) return 20 - shared + Math.abs(a.length - b.length) / 100;
  return undefined;
}

const parentOf = (path: string) => path.slice(0, Math.max(0, path.lastIndexOf('.')));
const leafOf = (path: string) => path.slice(path.lastIndexOf('.') + 1);

/** The known dotted key path nearest to the dotted path typed, if any is near. */
export function nearestKey(typed: string, known: readonly string[]): string | undefined {
  let best: { path: string; score: number } | undefined;
  const consider = (path: string, score: number | undefined) => {
    if (score !== undefined && (!best || score < best.score)) best = { path, score };
  };
  for (const path of known) {
    // A sibling first (same parent, nearest name); then the whole path with a typo anywhere;
    // then the same name under another parent.
    if (parentOf(path) === parentOf(typed)) consider(path, distance(leafOf(typed), leafOf(path)));
    const whole = distance(typed, path, true);
    consider(path, whole === undefined ? undefined : whole + 100);
    const moved = leafOf(typed) === leafOf(path) ? 200 : undefined;
    consider(path, moved);
  }
  return best?.path;
}
