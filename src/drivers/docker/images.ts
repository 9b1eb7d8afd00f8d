/**
 * The image allow-list: exact references, or globs where `*` matches any run of characters
 * except `/` and `**` any run at all (as in sigstore's policy-controller). So `corral/*` is
 * every image directly under `corral/`, `registry.example.org/**` everything from that
 * registry, and a single `*` cannot be stretched across a path or a registry host (`python*`
 * does not admit `python.evil.example/x`, `python:3.*` does not admit `python:3.1/x`).
 */
export class ImagePolicy {
  private readonly patterns: RegExp[];

  /** `trusted`: images the admin configured elsewhere (default and runtime images), always allowed. */
  constructor(allowed: string[], private readonly trusted: Set<string>) {
    this.patterns = allowed.map((p) => new RegExp(`^${p.split('**').map((part) => part.split('*').map(escapeRegExp).join('[^/]*')).join('.*')}$`));
  }

  allows(image: string): boolean {
    return this.trusted.has(image) || this.patterns.some((re) => re.test(image));
  }
}

const escapeRegExp = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
