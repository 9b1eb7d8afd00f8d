/**
 * A job container reports its command's exit code in-band: after the command (and the reset
 * that follows it), its shell prints a marker line with a per-job nonce, the code and whether
 * the reset left the container clean, on stdout and on stderr. Seeing the marker on both
 * streams means every byte the job wrote to them has arrived (each stream keeps its order), so
 * the result is known at once rather than after the engine noticed an exit (tens of
 * milliseconds later). This filter cuts the marker out of a stream. A job can print a marker
 * of its own (the nonce is no secret from it): that only tells its own result early, and the
 * runner checks on the host that nothing of it still runs before reusing the container.
 */
export class ExitMarker {
  private readonly prefix: Buffer;
  private held: Buffer = Buffer.alloc(0);
  /** The code once the marker passed; undefined before. */
  code: number | undefined;
  /** Whether the shell's reset after the job left nothing behind (undefined: not reported). */
  clean: boolean | undefined;

  constructor(nonce: string) {
    this.prefix = Buffer.from(`\x1ecorral-${nonce}:`);
  }

  /** The shell line that prints the marker: the nonce, the code and the clean flag (0/1) are shell words. */
  static printf(nonce: string, code: string, clean: string, fd: 1 | 2): string {
    return `printf '\\036corral-%s:%d:%d\\n' ${nonce} ${code} ${clean}${fd === 2 ? ' >&2' : ''}`;
  }

  /** Returns the part of `chunk` that is the job's own output (possibly empty). */
  push(chunk: Buffer): Buffer {
    if (this.code !== undefined) return chunk;
    const buf = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    const at = buf.indexOf(this.prefix);
    if (at >= 0) {
      const end = buf.indexOf(0x0a, at + this.prefix.length);
      if (end < 0) {
        this.held = Buffer.from(buf.subarray(at));
        return buf.subarray(0, at);
      }
      const [code, clean] = buf.subarray(at + this.prefix.length, end).toString().split(':');
      this.code = Number(code);
      this.clean = clean === undefined ? undefined : clean === '1';
      this.held = Buffer.alloc(0);
      return Buffer.concat([buf.subarray(0, at), buf.subarray(end + 1)]);
    }
    // Hold back a tail that may be the start of the marker.
    let keep = Math.min(buf.length, this.prefix.length - 1);
    while (keep > 0 && !this.prefix.subarray(0, keep).equals(buf.subarray(buf.length - keep))) keep--;
    this.held = keep ? Buffer.from(buf.subarray(buf.length - keep)) : Buffer.alloc(0);
    return buf.subarray(0, buf.length - keep);
  }

  /** What was held back when the stream ended without a marker. */
  flush(): Buffer {
    const rest = this.held;
    this.held = Buffer.alloc(0);
    return rest;
  }
}
