/**
 * A backup manifest is signed with the audit key of the node (or the host
 * running `drover backup create`) that took it: Ed25519 over the canonical
 * JSON of every other field, which include each file's SHA-256. So a
 * verified signature from a trusted key vouches for the whole copy, and the
 * keys a manifest lists are only candidates: a verifier trusts the keys it
 * already trusts and the ones an operator names by fingerprint, never a key
 * because the backup says so (a forged backup could list its forger's key).
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../audit/canonical.js';
import { keyIdOf, type NodeKey } from '../audit/node-key.js';
import type { BackupManifest } from './manifest.js';

/** A key id as `drover audit pubkey --json` prints it. */
export const FINGERPRINT_RE = /^ed25519:[0-9a-f]{16}$/;

export interface ManifestSignature {
  /** The signer's key id (recomputed from `publicKey` when checked; this copy is for people). */
  keyId: string;
  /** SPKI PEM. */
  publicKey: string;
  /** Base64 Ed25519 signature over the canonical manifest without `signature`. */
  value: string;
}

/** What can be signed: a backup manifest, a snapshot manifest (snapshots.ts). */
export interface Signable {
  auditKeys: Array<{ keyId: string; publicKey: string }>;
  signature?: ManifestSignature;
}

function signedBytes(manifest: Signable): Buffer {
  const { signature: _ignored, ...rest } = manifest;
  return Buffer.from(canonicalJson(JSON.parse(JSON.stringify(rest)) as unknown));
}

/**
 * @example
 * const signed = signManifest(manifest, loadOrCreateNodeKey(dataDir));
 */
export function signManifest<T extends Signable = BackupManifest>(manifest: T, key: NodeKey): T {
  const value = sign(null, signedBytes(manifest), key.privateKey).toString('base64');
  return { ...manifest, signature: { keyId: key.keyId, publicKey: key.publicPem, value } };
}

/** A key a backup carries that the verifier did not already trust. */
export interface NewKey {
  keyId: string;
  publicKey: string;
  /** Signed the manifest (else: listed as an audit key). */
  signer: boolean;
  /** The operator named its fingerprint, so it was used. */
  named: boolean;
}

export interface TrustDecision {
  /** Keys to check the manifest and the audit trail with: the trusted ones plus the named new ones. */
  keys: Map<string, KeyObject>;
  newKeys: NewKey[];
  signature: { ok: boolean; detail: string };
}

/**
 * Decide which keys a backup is checked with and whether its manifest signature holds.
 *
 * @example
 * const decision = judgeBackupKeys(manifest, trustedKeys(dataDir), ['ed25519:3f9a0c1d2e3f4a5b']);
 * decision.signature; // { ok: true, detail: 'signed by ed25519:3f9a… (named by fingerprint)' }
 */
export function judgeBackupKeys(manifest: Signable, trusted: ReadonlyMap<string, KeyObject>, named: readonly string[], flag: string): TrustDecision {
  const keys = new Map(trusted);
  const newKeys = new Map<string, NewKey>();
  const consider = (pem: string, signer: boolean): string | null => {
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
      if (key.asymmetricKeyType !== 'ed25519') return null;
    } catch {
      return null;
    }
    const id = keyIdOf(key);
    if (!trusted.has(id)) {
      const known = newKeys.get(id);
      newKeys.set(id, { keyId: id, publicKey: key.export({ type: 'spki', format: 'pem' }).toString(), signer: signer || (known?.signer ?? false), named: named.includes(id) });
      if (named.includes(id)) keys.set(id, key);
    }
    return id;
  };
  for (const { publicKey } of manifest.auditKeys) consider(publicKey, false);

  const sig = manifest.signature;
  let signature: TrustDecision['signature'];
  if (!sig || typeof sig.publicKey !== 'string' || typeof sig.value !== 'string') {
    signature = { ok: false, detail: 'the manifest is not signed (taken by a drover older than signed backups, or the signature was removed); a backup is trusted only when a key this node trusts signed it' };
  } else {
    const id = consider(sig.publicKey, true);
    const key = id ? keys.get(id) : undefined;
    let valid = false;
    try {
      valid = key !== undefined && verify(null, signedBytes(manifest), key, Buffer.from(sig.value, 'base64'));
    } catch {
      valid = false;
    }
    if (!id) signature = { ok: false, detail: 'the manifest signature names no readable Ed25519 public key' };
    else if (!key) {
      signature = {
        ok: false,
        detail: `signed by ${id}, a key this node does not trust. If that is the audit key of the node the backup came from (on that node: \`drover audit pubkey --json\`; compare the fingerprint out of band), pass ${flag} ${id}`,
      };
    } else if (!valid) signature = { ok: false, detail: `the signature by ${id} does not verify: the manifest was changed after it was signed` };
    else signature = { ok: true, detail: `signed by ${id}${trusted.has(id) ? '' : ' (named by fingerprint)'}` };
  }
  return { keys, newKeys: [...newKeys.values()], signature };
}

/** `--trust-key` values: fingerprints (`ed25519:…`) or public key files. */
export function splitTrustArgs(values: readonly string[]): { files: string[]; fingerprints: string[] } {
  const fingerprints = values.filter((v) => FINGERPRINT_RE.test(v));
  return { files: values.filter((v) => !FINGERPRINT_RE.test(v)), fingerprints };
}
