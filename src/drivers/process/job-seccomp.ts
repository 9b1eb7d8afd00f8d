/**
 * The seccomp filter job sandboxes load (bwrap --seccomp FD): the kernel keyring calls
 * (add_key, request_key, keyctl) fail with EPERM, everything else is allowed.
 *
 * Why: keys a job adds to its user keyring outlive its processes — the keyring belongs to the
 * sandbox's user namespace, which a reused sandbox keeps — so they would reach the next job.
 * Docker's default profile refuses the same calls. The rest of the isolation comes from the
 * namespaces and the dropped capabilities, not from this filter.
 *
 * A classic BPF program over `struct seccomp_data` (nr at offset 0, arch at 4), built here so
 * no compiler or extra package is needed. The native ABI and its 32-bit compat ABI are
 * checked (x32 syscall numbers are the native ones with bit 30 set, masked off). On another
 * architecture there is no filter (`undefined`), and docs/jobs.md says so.
 */

const LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const ALU_AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const RET_K = 0x06; // BPF_RET | BPF_K
const RET_ALLOW = 0x7fff0000;
const RET_EPERM = 0x00050000 | 1; // SECCOMP_RET_ERRNO | EPERM
const X32_BIT_MASK = 0xbfffffff;

interface Abi {
  arch: number;
  /** add_key, request_key, keyctl. */
  keyring: number[];
  /** Mask the syscall number first (x32 shares x86-64's numbers with bit 30 set). */
  mask?: number;
}

const ABIS: Record<string, Abi[]> = {
  x64: [
    { arch: 0xc000003e, keyring: [248, 249, 250], mask: X32_BIT_MASK },
    { arch: 0x40000003, keyring: [286, 287, 288] }, // i386
  ],
  arm64: [
    { arch: 0xc00000b7, keyring: [217, 218, 219] },
    { arch: 0x40000028, keyring: [309, 310, 311] }, // arm (compat)
  ],
};

type Insn = [code: number, jt: number, jf: number, k: number];

/** The filter for this machine's architecture, or undefined when there is none for it. */
export function keyringFilter(arch: string = process.arch): Buffer | undefined {
  const abis = ABIS[arch];
  if (!abis) return undefined;
  // Each ABI block: [ld arch, jeq arch ? next : next block, ld nr, (and mask), jeq ×3 → deny, ret allow].
  const blocks: Insn[][] = abis.map((abi) => [
    [LD_W_ABS, 0, 0, 4],
    [JEQ_K, 0, 0, abi.arch], // jf patched below to the next block
    [LD_W_ABS, 0, 0, 0],
    ...(abi.mask === undefined ? [] : [[ALU_AND_K, 0, 0, abi.mask] as Insn]),
    ...abi.keyring.map((nr): Insn => [JEQ_K, 0, 0, nr]), // jt patched below to deny
    [RET_K, 0, 0, RET_ALLOW],
  ]);
  const program: Insn[] = [];
  const starts: number[] = [];
  for (const b of blocks) {
    starts.push(program.length);
    program.push(...b);
  }
  const allowAll = program.length;
  program.push([RET_K, 0, 0, RET_ALLOW]);
  const deny = program.length;
  program.push([RET_K, 0, 0, RET_EPERM]);
  blocks.forEach((b, i) => {
    const start = starts[i]!;
    const next = i + 1 < blocks.length ? starts[i + 1]! : allowAll;
    // Jumps are relative to the instruction after the jump.
    program[start + 1]![2] = next - (start + 2);
    for (let j = 0; j < b.length; j++) {
      const at = start + j;
      const insn = program[at]!;
      if (j > 1 && insn[0] === JEQ_K) insn[1] = deny - (at + 1);
    }
  });
  const buf = Buffer.alloc(program.length * 8);
  program.forEach(([code, jt, jf, k], i) => {
    buf.writeUInt16LE(code, i * 8);
    buf.writeUInt8(jt, i * 8 + 2);
    buf.writeUInt8(jf, i * 8 + 3);
    buf.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return buf;
}
