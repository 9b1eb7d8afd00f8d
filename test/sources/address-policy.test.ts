import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { createAddressPolicy, parseCidr } from '../../src/core/sources/address-policy.js';

describe('the default address policy', () => {
  const policy = createAddressPolicy();

  it.each([
    '127.0.0.1', '127.255.255.254', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254',
    '100.64.0.1', '100.127.255.255', '0.0.0.0', '224.0.0.1', '239.255.255.250', '255.255.255.255', '198.18.0.1',
    '::', '::1', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe', '64:ff9b::a00:1', '2002:7f00:1::1', 'not-an-address', '',
  ])('refuses %s', (address) => {
    expect(policy.permits(address)).toBe(false);
    expect(() => policy.check(address)).toThrowError(expect.objectContaining({ code: 'source_refused' }));
  });

  it.each(['1.1.1.1', '8.8.8.8', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    'permits %s',
    (address) => {
      expect(policy.permits(address)).toBe(true);
      expect(() => policy.check(address)).not.toThrow();
    },
  );

  it('names the host and the address it resolved to', () => {
    expect(() => policy.check('127.0.0.1', 'localhost')).toThrowError(/localhost \(127\.0\.0\.1\).*sources\.allowPrivate/);
  });
});

describe('sources.allowPrivate', () => {
  it('opens exactly the ranges listed, for IPv4 and its IPv6-mapped form', () => {
    const policy = createAddressPolicy(['127.0.0.1/32', '10.1.0.0/16', 'fd00::/8']);
    expect(policy.permits('127.0.0.1')).toBe(true);
    expect(policy.permits('::ffff:127.0.0.1')).toBe(true);
    expect(policy.permits('127.0.0.2')).toBe(false);
    expect(policy.permits('10.1.200.3')).toBe(true);
    expect(policy.permits('10.2.0.1')).toBe(false);
    expect(policy.permits('fd00::5')).toBe(true);
    expect(policy.permits('fc00::5')).toBe(false);
    expect(policy.permits('169.254.169.254')).toBe(false);
  });

  it('a bad entry is a config error naming it', () => {
    expect(() => createAddressPolicy(['10.0.0.0/33'])).toThrowError(expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(/"10\.0\.0\.0\/33"/) }));
  });

  it.each([
    ['10.0.0.0/8', { address: '10.0.0.0', prefix: 8, family: 'ipv4' }],
    ['127.0.0.1', { address: '127.0.0.1', prefix: 32, family: 'ipv4' }],
    ['::1', { address: '::1', prefix: 128, family: 'ipv6' }],
    ['fc00::/7', { address: 'fc00::', prefix: 7, family: 'ipv6' }],
    ['10.0.0.0/33', undefined],
    ['10.0.0.0/x', undefined],
    ['10.0.0/8', undefined],
    ['10.0.0.0/8/8', undefined],
    ['localhost', undefined],
  ])('parseCidr(%j)', (text, expected) => {
    expect(parseCidr(text)).toEqual(expected);
  });
});

describe('the sources config section', () => {
  it('has the documented defaults', () => {
    expect(loadConfig({ env: {} }).sources).toEqual({
      allowPrivate: [],
      maxDownloadBytes: 100 * 1024 * 1024,
      maxUnpackedBytes: 500 * 1024 * 1024,
      maxFiles: 10_000,
      downloadTimeoutSeconds: 60,
      unpackTimeoutSeconds: 300,
    });
  });

  it('reads the allow-list from an environment variable', () => {
    const config = loadConfig({ env: { CORRAL_SOURCES__ALLOW_PRIVATE: '["127.0.0.0/8", "::1"]', CORRAL_SOURCES__MAX_FILES: '20' } });
    expect(config.sources.allowPrivate).toEqual(['127.0.0.0/8', '::1']);
    expect(config.sources.maxFiles).toBe(20);
  });

  it.each([
    [{ allowPrivate: ['nope'] }, /sources\.allowPrivate\.0.*cidr/],
    [{ maxFiles: 0 }, /sources\.maxFiles/],
    [{ downloadTimeoutSeconds: 'soon' }, /sources\.downloadTimeoutSeconds/],
    [{ unpackTimeoutSeconds: 0 }, /sources\.unpackTimeoutSeconds/],
    [{ allowLoopback: true }, /unknown config key "sources\.allowLoopback"/],
  ])('refuses %j', (sources, message) => {
    expect(() => loadConfig({ env: {}, flags: { sources } })).toThrowError(message);
  });
});
