/**
 * The host's IPv4 routes, to see whether a subnet corral is about to give a bridge overlaps a
 * network the machine already reaches (a LAN, a VPN, another engine's bridge). Docker checks
 * a given subnet only against its own networks: a ports network on a LAN's subnet would
 * capture that LAN's addresses on this host.
 */
import { readFileSync } from 'node:fs';
import { BlockList } from 'node:net';

export interface HostRoute {
  dev: string;
  /** CIDR, e.g. 192.0.2.0/24. */
  subnet: string;
}

/** /proc/net/route's rows (little-endian hex destination and mask), the default route left out. */
export function parseRoutes(text: string): HostRoute[] {
  const hexToIp = (hex: string) => [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
  const bits = (hex: string) => parseInt(hex, 16).toString(2).replaceAll('0', '').length;
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 8 && /^[0-9A-Fa-f]{8}$/.test(f[1]!) && /^[0-9A-Fa-f]{8}$/.test(f[7]!) && f[7] !== '00000000')
    .map((f) => ({ dev: f[0]!, subnet: `${hexToIp(f[1]!)}/${bits(f[7]!)}` }));
}

export function readHostRoutes(): HostRoute[] {
  try {
    return parseRoutes(readFileSync('/proc/net/route', 'utf8'));
  } catch {
    return []; // not Linux, or no /proc: nothing to compare with
  }
}

/** Whether two IPv4 CIDRs share an address: one holds the other's first address. */
export function subnetsOverlap(a: string, b: string): boolean {
  const [aNet, aBits] = a.split('/') as [string, string];
  const [bNet, bBits] = b.split('/') as [string, string];
  const inA = new BlockList();
  inA.addSubnet(aNet, Number(aBits));
  const inB = new BlockList();
  inB.addSubnet(bNet, Number(bBits));
  return inA.check(bNet) || inB.check(aNet);
}
