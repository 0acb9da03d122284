/**
 * Random (version 4) UUIDs written in one string allocation. Node's
 * `crypto.randomUUID` builds its text from 20 two-character pieces joined
 * with `+`: about 20 intermediate strings (~550 bytes) per id. The SQLite
 * lease makes one per job (its lease token), a twentieth of what a drain
 * allocates per job, and each scavenge a drain saves promotes less
 * (docs/benchmarks.md, "Worker memory, eighth pass"). The randomness is the
 * same: bytes from `randomFillSync`, taken from a pool refilled every
 * `POOL_IDS` ids, as Node's own pool is.
 */
import { randomFillSync } from 'node:crypto';

const POOL_IDS = 128;
const pool = Buffer.alloc(16 * POOL_IDS);
let nextId = POOL_IDS;
/** The text is formatted here, then copied out as one one-byte string. */
const text = Buffer.alloc(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const DASH = 0x2d;

/**
 * A random UUID, the same format as `crypto.randomUUID()`.
 *
 * @example
 * randomUuid() // 'f47ac10b-58cc-4372-a567-0e02b2c3d479'
 */
export function randomUuid(): string {
  if (nextId === POOL_IDS) {
    randomFillSync(pool);
    nextId = 0;
  }
  const at = nextId++ * 16;
  let o = 0;
  for (let i = 0; i < 16; i++) {
    let byte = pool[at + i]!;
    // RFC 9562: version 4 in byte 6's high nibble, the variant (0b10) in byte 8's top bits.
    if (i === 6) byte = (byte & 0x0f) | 0x40;
    else if (i === 8) byte = (byte & 0x3f) | 0x80;
    text[o++] = HEX[byte >> 4]!;
    text[o++] = HEX[byte & 0x0f]!;
    if (i === 3 || i === 5 || i === 7 || i === 9) text[o++] = DASH;
  }
  return text.toString('latin1', 0, 36);
}
