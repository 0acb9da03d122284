/**
 * SSRF guard, pure: which IP addresses a webhook may not connect to unless
 * the config allows private networks. Loopback, private, carrier-grade NAT,
 * link-local (cloud metadata lives at 169.254.169.254 and fd00:ec2::254),
 * unique-local, multicast, reserved and unspecified addresses are refused.
 *
 * IPv6 forms that carry an IPv4 address are judged by the IPv4 inside:
 * IPv4-compatible (`::7f00:1`), IPv4-mapped (`::ffff:…`), IPv4-translated
 * (`::ffff:0:…`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`). Prefixes
 * whose IPv4 cannot be told from the address alone are refused whole:
 * local-use NAT64 (`64:ff9b:1::/48`, RFC 8215: the operator picks where the
 * IPv4 sits) and Teredo (`2001::/32`: server and obfuscated client IPv4).
 * A gateway on the path translates these forms into the IPv4 inside, so an
 * address that looks public to an IPv6-only check can reach 127.0.0.1.
 */
import { BlockList, isIP } from 'node:net';

const blockedV4 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blockedV4.addSubnet(net, prefix, 'ipv4');

const blockedV6 = new BlockList();
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['2001:db8::', 32], ['100::', 64],
  ['64:ff9b:1::', 48], ['2001::', 32],
] as const) blockedV6.addSubnet(net, prefix, 'ipv6');

/** The 16 bytes of an IPv6 address (already known to be valid by `isIP`), or null. */
export function ipv6Bytes(address: string): Uint8Array | null {
  let text = address.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const words: number[] = [];
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 0) return null;
  words.push(...head, ...Array<number>(fill).fill(0), ...tail);
  if (words.length !== 8 || words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffff)) return null;
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[i * 2] = w >> 8;
    bytes[i * 2 + 1] = w & 255;
  });
  return bytes;
}

const v4At = (bytes: Uint8Array, at: number) => `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
const zeros = (bytes: Uint8Array, from: number, to: number) => bytes.subarray(from, to).every((b) => b === 0);

/**
 * The IPv4 address an IPv6 address carries, or null when it carries none:
 * compatible `::a.b.c.d`, mapped `::ffff:a.b.c.d`, translated
 * `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::/48`.
 *
 * @example
 * embeddedIpv4('::7f00:1');          // '127.0.0.1'
 * embeddedIpv4('2002:a9fe:a9fe::1'); // '169.254.169.254'
 */
export function embeddedIpv4(address: string): string | null {
  const bytes = ipv6Bytes(address);
  if (!bytes) return null;
  if (zeros(bytes, 0, 10)) {
    const marker = (bytes[10]! << 8) | bytes[11]!;
    if (marker === 0 || marker === 0xffff) return v4At(bytes, 12); // compatible, mapped
  }
  if (zeros(bytes, 0, 8) && bytes[8] === 0xff && bytes[9] === 0xff && bytes[10] === 0 && bytes[11] === 0) return v4At(bytes, 12); // translated
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeros(bytes, 4, 12)) return v4At(bytes, 12); // NAT64 well-known
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return v4At(bytes, 2); // 6to4
  return null;
}

/**
 * True when a webhook must not connect to `address` (an IP literal, bracketed
 * or not). Anything that is not an IP address is refused too.
 *
 * @example
 * isForbiddenAddress('169.254.169.254'); // true
 * isForbiddenAddress('::7f00:1');        // true (IPv4-compatible 127.0.0.1)
 * isForbiddenAddress('93.184.216.34');   // false
 */
export function isForbiddenAddress(address: string): boolean {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(bare);
  if (family === 4) return blockedV4.check(bare, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(bare);
    if (v4 !== null && blockedV4.check(v4, 'ipv4')) return true;
    const bytes = ipv6Bytes(bare);
    if (!bytes) return true;
    return blockedV6.check(bare.split('%')[0]!, 'ipv6');
  }
  return true;
}
