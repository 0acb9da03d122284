import { describe, expect, it } from 'vitest';
import { embeddedIpv4, ipv6Bytes, isForbiddenAddress } from '../../src/runtime/ssrf.js';

describe('SSRF guard', () => {
  it.each([
    '127.0.0.1', '127.255.0.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255',
    '::1', '::', 'fd00::1', 'fd00:ec2::254', 'fc00::1', 'fe80::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:169.254.169.254', '64:ff9b::a9fe:a9fe', '[::1]', 'not-an-ip',
  ])('refuses %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(false);
  });

  // IPv6 forms that carry an IPv4 address: a translator on the path turns them into the IPv4 inside.
  it.each([
    ['IPv4-compatible, hex', '::7f00:1'],
    ['IPv4-compatible, dotted', '::127.0.0.1'],
    ['IPv4-compatible, full', '0:0:0:0:0:0:a9fe:a9fe'],
    ['IPv4-mapped, full', '0:0:0:0:0:ffff:7f00:1'],
    ['IPv4-mapped, metadata', '::ffff:a9fe:a9fe'],
    ['IPv4-mapped, private', '[::ffff:10.0.0.5]'],
    ['IPv4-translated', '::ffff:0:7f00:1'],
    ['IPv4-translated, dotted', '::ffff:0:192.168.0.1'],
    ['NAT64 well-known, dotted', '64:ff9b::127.0.0.1'],
    ['NAT64 well-known, full', '64:ff9b:0:0:0:0:a00:1'],
    ['NAT64 local-use (whole /48)', '64:ff9b:1::8.8.8.8'],
    ['NAT64 local-use, other layout', '64:ff9b:1:7f00:1::'],
    ['6to4 of loopback', '2002:7f00:1::'],
    ['6to4 of metadata', '2002:a9fe:a9fe::1'],
    ['6to4 of private', '2002:c0a8:101:1::5'],
    ['Teredo (whole /32)', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
    ['Teredo, short', '2001::1'],
    ['6to4 relay anycast (IPv4)', '192.88.99.1'],
    ['scoped link-local', 'fe80::1%eth0'],
  ])('refuses %s: %s', (_form, address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  it.each([
    ['IPv4-compatible of a public address', '::808:808'],
    ['NAT64 of a public address', '64:ff9b::8.8.8.8'],
    ['6to4 of a public address', '2002:808:808::1'],
    ['a global unicast address', '2a00:1450:4001:80b::200e'],
    ['2001:4860 (Google, outside Teredo)', '2001:4860:4860::8888'],
  ])('allows %s: %s', (_form, address) => {
    expect(isForbiddenAddress(address)).toBe(false);
  });

  it('reads the IPv4 inside each embedding form', () => {
    expect(embeddedIpv4('::7f00:1')).toBe('127.0.0.1');
    expect(embeddedIpv4('::ffff:10.0.0.5')).toBe('10.0.0.5');
    expect(embeddedIpv4('::ffff:0:a00:5')).toBe('10.0.0.5');
    expect(embeddedIpv4('64:ff9b::a9fe:a9fe')).toBe('169.254.169.254');
    expect(embeddedIpv4('2002:a9fe:a9fe::1')).toBe('169.254.169.254');
    expect(embeddedIpv4('2606:4700::1111')).toBeNull();
    expect(ipv6Bytes('1:2:3:4:5:6:7:8')?.[15]).toBe(8);
    expect(ipv6Bytes('1::2::3')).toBeNull();
  });

  // The URL parser turns every IPv4 spelling into dotted decimal before the guard sees the host.
  it.each(['http://2130706433/', 'http://0x7f.1/', 'http://0177.0.0.1/', 'http://127.1/', 'http://0x7f000001/', 'http://017700000001/', 'http://0xa9.0xfe.0xa9.0xfe/', 'http://[::ffff:127.0.0.1]/', 'http://[0:0:0:0:0:ffff:7f00:1]/'])(
    'refuses the host of %s as the URL parser reads it',
    (url) => {
      expect(isForbiddenAddress(new URL(url).hostname)).toBe(true);
    },
  );
});
