/**
 * The audit hash chain. A record's hash is SHA-256 over its canonical JSON
 * (every field except `hash` and `signature`, keys sorted), which includes
 * `seq` and the previous record's hash; the node signs the hash with Ed25519.
 * So:
 * - editing a record changes its hash (and re-hashing needs the private key
 *   to re-sign);
 * - deleting a record leaves a gap in `seq` and a `prevHash` that matches
 *   nothing before it;
 * - reordering records breaks both at the first moved one.
 * Truncating the newest records is not visible in the chain alone; compare
 * with the JSONL export (`drover audit verify --db` does) or an earlier head.
 */
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import type { AuditEntry, AuditRecord } from '../../core/types.js';
import type { AuditSeal } from '../../store/engine.js';
import { canonicalJson } from './canonical.js';
import type { NodeKey } from './node-key.js';

/** `prevHash` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);
/** Bumped if the hashed form ever changes; part of what is hashed. */
const FORMAT = 1;

type Hashed = Omit<AuditRecord, 'hash' | 'signature'>;

/** SHA-256 (hex) of the record's canonical form. */
export function hashRecord(record: Hashed): string {
  const body = {
    v: FORMAT,
    seq: record.seq,
    time: record.time,
    actor: record.actor,
    requestId: record.requestId,
    action: record.action,
    target: record.target,
    before: record.before,
    after: record.after,
    prevHash: record.prevHash,
    signer: record.signer,
  };
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

/**
 * The sealer the store calls inside its insert transaction.
 *
 * @example
 * await store.appendAudit(entry, sealWith(nodeKey));
 */
export function sealWith(key: NodeKey): AuditSeal {
  return (entry: AuditEntry, previous) => {
    const unsigned: Hashed = {
      ...entry,
      seq: (previous?.seq ?? 0) + 1,
      prevHash: previous?.hash ?? GENESIS_HASH,
      signer: key.keyId,
    };
    const hash = hashRecord(unsigned);
    const signature = sign(null, Buffer.from(hash, 'hex'), key.privateKey).toString('base64');
    return { ...unsigned, hash, signature };
  };
}

export interface ChainFault {
  seq: number | null;
  /** 1-based position in what was read (line number for a file). */
  position: number;
  /** Where it was read from (a file path, or `store`). */
  source: string;
  reason: string;
}

export interface ChainReport {
  ok: boolean;
  /** Records checked (up to and including the first fault). */
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  lastHash: string | null;
  /** The first bad record; checking stops there. */
  fault: ChainFault | null;
  /** Key ids that signed the records checked. */
  signers: string[];
  /** True when the first record checked was not record 1 (a rotated export): its prevHash was taken on trust. */
  anchored: boolean;
}

/**
 * Checks records one at a time, in order, and remembers the first fault.
 *
 * @example
 * const verifier = new ChainVerifier(trustedKeys(dataDir), { fromGenesis: true });
 * for (const record of records) if (!verifier.check(record, 'store', i + 1)) break;
 * verifier.report(); // { ok: false, fault: { seq: 7, reason: 'hash does not match …' }, … }
 */
export class ChainVerifier {
  readonly #keys: ReadonlyMap<string, KeyObject>;
  readonly #fromGenesis: boolean;
  #records = 0;
  #first: number | null = null;
  #last: { seq: number; hash: string } | null = null;
  #fault: ChainFault | null = null;
  readonly #signers = new Set<string>();

  /** `fromGenesis`: the first record must be record 1 (the store); false for an export that may start later. */
  constructor(keys: ReadonlyMap<string, KeyObject>, options: { fromGenesis: boolean }) {
    this.#keys = keys;
    this.#fromGenesis = options.fromGenesis;
  }

  get faulted(): boolean {
    return this.#fault !== null;
  }

  /** Check the next record; false (and no further checks) once a fault is found. */
  check(record: AuditRecord, source: string, position: number): boolean {
    if (this.#fault) return false;
    this.#records++;
    const reason = this.#problem(record);
    if (reason) {
      this.#fault = { seq: Number.isSafeInteger(record.seq) ? record.seq : null, position, source, reason };
      return false;
    }
    this.#first ??= record.seq;
    this.#signers.add(record.signer);
    this.#last = { seq: record.seq, hash: record.hash };
    return true;
  }

  /** Record a fault found outside the records themselves (an unreadable line, a truncated export). */
  fail(fault: ChainFault): void {
    this.#fault ??= fault;
  }

  report(): ChainReport {
    return {
      ok: this.#fault === null,
      records: this.#records,
      firstSeq: this.#first,
      lastSeq: this.#last?.seq ?? null,
      lastHash: this.#last?.hash ?? null,
      fault: this.#fault,
      signers: [...this.#signers],
      anchored: !this.#fromGenesis && this.#first !== null && this.#first !== 1,
    };
  }

  #problem(record: AuditRecord): string | null {
    if (!Number.isSafeInteger(record.seq) || record.seq < 1) return `seq ${String(record.seq)} is not a positive integer`;
    const prev = this.#last;
    if (prev) {
      if (record.seq !== prev.seq + 1) {
        return record.seq > prev.seq + 1
          ? `record ${record.seq} follows record ${prev.seq}: record${record.seq - prev.seq > 2 ? `s ${prev.seq + 1}–${record.seq - 1} are` : ` ${prev.seq + 1} is`} missing`
          : `record ${record.seq} follows record ${prev.seq}: records are out of order`;
      }
      if (record.prevHash !== prev.hash) return `prevHash does not match the hash of record ${prev.seq}: a record before it was changed, removed or reordered`;
    } else if (this.#fromGenesis || record.seq === 1) {
      if (record.seq !== 1) return `the trail starts at record ${record.seq}; records 1–${record.seq - 1} are missing`;
      if (record.prevHash !== GENESIS_HASH) return 'record 1 must have the all-zero prevHash';
    }
    if (hashRecord(record) !== record.hash) return 'hash does not match the record\'s contents: the record was edited';
    const key = this.#keys.get(record.signer);
    if (!key) return `signed by ${record.signer}, which is not a trusted key (pass its public key with --pubkey, or put it in the data directory's audit-trusted-keys/)`;
    let valid = false;
    try {
      valid = verify(null, Buffer.from(record.hash, 'hex'), key, Buffer.from(record.signature, 'base64'));
    } catch {
      valid = false;
    }
    if (!valid) return `signature does not verify with ${record.signer}`;
    return null;
  }
}
