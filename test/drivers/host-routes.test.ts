/**
 * drivers.swarm.portsSubnet against the host's routes: a ports network is never made on a
 * subnet this host already routes somewhere (a LAN, a VPN, another engine's bridge), and the
 * setting itself must be an IPv4 CIDR.
 */
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PORTS_SUBNET, SwarmConfigSchema } from '../../src/drivers/swarm/config.js';
import { parseRoutes, readHostRoutes, subnetsOverlap } from '../../src/drivers/swarm/host-routes.js';
import { ensurePortsNetwork } from '../../src/drivers/swarm/ports-network.js';
import type { Engine } from '../../src/drivers/docker/engine.js';

const PROC_NET_ROUTE = [
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
  'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
  'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
  'br-1\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  'tun0\t00F012C6\t00000000\t0001\t0\t0\t0\t00FCFFFF\t0\t0\t0',
].join('\n');

/** An engine on which no network exists yet, recording what corral asked it to make. */
function emptyEngine(made: unknown[]): Engine {
  const missing = Object.assign(new Error('no such network'), { statusCode: 404 });
  return {
    getNetwork: () => ({ inspect: async () => Promise.reject(missing) }),
    createNetwork: async (o: unknown) => void made.push(o),
  } as unknown as Engine;
}

describe('the ports subnet and the host routes', () => {
  it('reads /proc/net/route: each network route as a CIDR with its device, the default route left out', () => {
    expect(parseRoutes(PROC_NET_ROUTE)).toEqual([
      { dev: 'eth0', subnet: '192.0.2.0/24' },
      { dev: 'br-1', subnet: '172.17.0.0/16' },
      { dev: 'tun0', subnet: '198.18.240.0/22' },
    ]);
    // This machine's own table parses too (whatever it holds, each is a CIDR).
    for (const r of readHostRoutes()) expect(r.subnet).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
  });

  it.each([
    ['198.18.240.0/20', '198.18.240.0/22', true],
    ['198.18.240.0/22', '198.18.240.0/20', true],
    ['10.0.0.0/8', '10.213.0.0/16', true],
    ['198.18.240.0/20', '198.18.0.0/20', false],
    ['172.17.0.0/16', '172.16.0.0/16', false],
  ])('%s and %s overlap: %s', (a, b, overlap) => {
    expect(subnetsOverlap(a, b)).toBe(overlap);
  });

  it('refuses to make the ports network on a subnet the host routes elsewhere, naming the route', async () => {
    const made: unknown[] = [];
    const routes = () => parseRoutes(PROC_NET_ROUTE);
    await expect(ensurePortsNetwork(emptyEngine(made), DEFAULT_PORTS_SUBNET, routes)).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringMatching(/portsSubnet 198\.18\.240\.0\/20 overlaps this host's route to 198\.18\.240\.0\/22 \(dev tun0\)/),
    });
    expect(made).toEqual([]);
    // A subnet clear of every route is made (then inspected: this fake engine has none, so it
    // is refused as not corral's — what matters here is that it was asked for).
    await ensurePortsNetwork(emptyEngine(made), '198.19.16.0/20', routes).catch(() => undefined);
    expect(made).toContainEqual(expect.objectContaining({ IPAM: { Config: [{ Subnet: '198.19.16.0/20' }] } }));
  });

  it('takes only an IPv4 CIDR as drivers.swarm.portsSubnet; the default lies outside Docker’s own pools', () => {
    const ok = (portsSubnet: string) => Value.Check(SwarmConfigSchema, { ...Value.Default(SwarmConfigSchema, {}) as object, portsSubnet });
    expect(ok('198.18.240.0/20')).toBe(true);
    for (const bad of ['999.1.1.1/20', '10.0.0.0/33', '10.0.0/8', '10.0.0.0', 'fd00::/64', '10.0.0.0/8 ']) expect(ok(bad), bad).toBe(false);
    for (const pool of ['10.0.0.0/8', '172.17.0.0/16', '172.31.0.0/16', '192.168.0.0/16']) expect(subnetsOverlap(DEFAULT_PORTS_SUBNET, pool), pool).toBe(false);
  });
});
