/**
 * Which network addresses a source download may connect to. Everything public is allowed;
 * loopback, private, link-local (incl. the cloud metadata address 169.254.169.254), CGNAT,
 * multicast, reserved and the IPv6 equivalents are refused unless the admin allows a range
 * with `sources.allowPrivate` (e.g. `["127.0.0.0/8"]` for local testing).
 *
 * The check is applied to the address actually connected to (see download.ts), so a host
 * name that resolves to a refused address — or re-resolves to one (DNS rebinding) — is
 * refused too.
 */
import net from 'node:net';
import { errors } from '../errors.js';

type Family = 'ipv4' | 'ipv6';

/** Ranges no download may reach unless allowed. */
const REFUSED: Array<[string, number, Family]> = [
  ['0.0.0.0', 8, 'ipv4'], // "this network", incl. the unspecified 0.0.0.0
  ['10.0.0.0', 8, 'ipv4'], // private
  ['100.64.0.0', 10, 'ipv4'], // carrier-grade NAT
  ['127.0.0.0', 8, 'ipv4'], // loopback
  ['169.254.0.0', 16, 'ipv4'], // link-local, incl. the metadata address 169.254.169.254
  ['172.16.0.0', 12, 'ipv4'], // private
  ['192.0.0.0', 24, 'ipv4'], // IETF protocol assignments
  ['192.0.2.0', 24, 'ipv4'], // documentation
  ['192.88.99.0', 24, 'ipv4'], // 6to4 relay anycast
  ['192.168.0.0', 16, 'ipv4'], // private
  ['198.18.0.0', 15, 'ipv4'], // benchmarking
  ['198.51.100.0', 24, 'ipv4'], // documentation
  ['203.0.113.0', 24, 'ipv4'], // documentation
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved, incl. broadcast 255.255.255.255
  ['::', 96, 'ipv6'], // unspecified ::, loopback ::1 and the old IPv4-compatible form
  ['64:ff9b::', 96, 'ipv6'], // NAT64: would reach any IPv4 address, private ones included
  ['64:ff9b:1::', 48, 'ipv6'], // local-use NAT64
  ['100::', 64, 'ipv6'], // discard
  ['2001::', 32, 'ipv6'], // Teredo tunnels embed an IPv4 address
  ['2001:db8::', 32, 'ipv6'], // documentation
  ['2002::', 16, 'ipv6'], // 6to4 tunnels embed an IPv4 address
  ['fc00::', 7, 'ipv6'], // unique local (private)
  ['fe80::', 10, 'ipv6'], // link-local
  ['fec0::', 10, 'ipv6'], // deprecated site-local
  ['ff00::', 8, 'ipv6'], // multicast
];
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) need no entry: net.BlockList matches them
// against the IPv4 ranges above (and against IPv4 ranges in the allow-list).

const refused = new net.BlockList();
for (const [address, prefix, family] of REFUSED) refused.addSubnet(address, prefix, family);

export interface Cidr {
  address: string;
  prefix: number;
  family: Family;
}

/** "10.0.0.0/8", "::1/128" or a bare address (a single host) → Cidr; undefined if malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [address = '', prefixText, ...rest] = text.trim().split('/');
  const version = net.isIP(address);
  if (!version || rest.length) return undefined;
  const max = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export const isCidr = (text: string): boolean => parseCidr(text) !== undefined;

export interface AddressPolicy {
  /** True when a download may connect to this IP address. */
  permits(address: string): boolean;
  /** Throws `source_refused` naming the address (and the host it came from) when refused. */
  check(address: string, host?: string): void;
}

/** A policy that refuses the ranges above except those in `allowPrivate` (CIDR strings). */
export function createAddressPolicy(allowPrivate: readonly string[] = []): AddressPolicy {
  const allowed = new net.BlockList();
  for (const text of allowPrivate) {
    const cidr = parseCidr(text);
    if (!cidr) throw errors.config(`config key "sources.allowPrivate": "${text}" is not an address or CIDR range`);
    allowed.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  const permits = (address: string): boolean => {
    const version = net.isIP(address);
    if (!version) return false;
    const family: Family = version === 4 ? 'ipv4' : 'ipv6';
    try {
      return !refused.check(address, family) || allowed.check(address, family);
    } catch {
      return false; // e.g. an IPv6 address with a zone id, which BlockList does not take
    }
  };
  return {
    permits,
    check(address, host) {
      if (permits(address)) return;
      const what = host && host !== address ? `${host} (${address})` : address;
      throw errors.sourceRefused(
        `refusing to download from ${what}: loopback, private, link-local and reserved addresses are not allowed (an admin can allow a range with sources.allowPrivate)`,
      );
    },
  };
}
