/**
 * The node's Ed25519 signing key for the audit trail: generated on first
 * start, kept in the data directory as `audit-signing-key.pem` (PKCS#8, mode
 * 0600), never in the store — whoever can write the store must not be able to
 * forge records. Verifiers trust this key plus the public keys in
 * `audit-trusted-keys/*.pem` beside it (other nodes, keys of earlier
 * installations a backup came from) and any `--pubkey` file.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DroverError, toError } from '../../core/errors.js';

export const KEY_FILE = 'audit-signing-key.pem';
export const TRUSTED_DIR = 'audit-trusted-keys';

export interface NodeKey {
  /** Fingerprint of the public key; each record names its signer by it. */
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SPKI PEM, what `drover audit pubkey` prints. */
  publicPem: string;
  /** Where it is kept; null for an ephemeral key. */
  file: string | null;
}

/**
 * The key id: the first 16 hex digits of SHA-256 over the DER public key.
 *
 * @example
 * keyIdOf(createPublicKey(pem)); // 'ed25519:3f9a0c…'
 */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return `ed25519:${createHash('sha256').update(der).digest('hex').slice(0, 16)}`;
}

function fromPrivate(privateKey: KeyObject, file: string | null): NodeKey {
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new DroverError('config_invalid', `${file ?? 'the audit key'} is a ${privateKey.asymmetricKeyType} key; expected Ed25519`);
  }
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), file };
}

/** A key that lives only in memory (runtimes built without a data directory, tests). */
export function ephemeralNodeKey(): NodeKey {
  return fromPrivate(generateKeyPairSync('ed25519').privateKey, null);
}

/**
 * Load the node key from `dataDir`, creating it (mode 0600) when there is none.
 * Two processes starting at once agree on one key: the new key is written to
 * a temporary file and hard-linked into place, which fails if the other won.
 *
 * @example
 * const key = loadOrCreateNodeKey('/var/lib/drover');
 * key.keyId; // 'ed25519:…'
 */
export function loadOrCreateNodeKey(dataDir: string): NodeKey {
  const file = join(dataDir, KEY_FILE);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, pem, { mode: 0o600, flag: 'w' });
    chmodSync(temp, 0o600); // in case the umask dropped bits the mode asked for
    try {
      linkSync(temp, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw keyError(file, error);
    } finally {
      unlinkSync(temp);
    }
  }
  return loadNodeKey(file);
}

/** Load an existing key file; refuses one that group or others can read (as ssh does). */
export function loadNodeKey(file: string): NodeKey {
  let pem: string;
  try {
    if (process.platform !== 'win32') {
      const mode = statSync(file).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        throw new DroverError('config_invalid', `the audit signing key ${file} is readable by other users (mode ${mode.toString(8)}); run \`chmod 600 ${file}\``);
      }
    }
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof DroverError) throw error;
    throw keyError(file, error);
  }
  try {
    return fromPrivate(createPrivateKey(pem), file);
  } catch (error) {
    if (error instanceof DroverError) throw error;
    throw new DroverError('config_invalid', `${file} is not a PEM private key: ${toError(error).message}`, { cause: error });
  }
}

/** Read a public key (SPKI PEM) or a private key file (its public half). */
export function readPublicKey(file: string): KeyObject {
  try {
    const key = createPublicKey(readFileSync(file, 'utf8'));
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key, not Ed25519`);
    return key;
  } catch (error) {
    throw new DroverError('validation', `cannot read a public key from ${file}: ${toError(error).message}`, { cause: error });
  }
}

/**
 * The keys a verifier trusts: the node key in `dataDir` (its public half; it
 * may not exist yet), every `audit-trusted-keys/*.pem` there, and `extra` files.
 */
export function trustedKeys(dataDir: string, extra: readonly string[] = []): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  const add = (key: KeyObject) => keys.set(keyIdOf(key), key);
  const own = join(dataDir, KEY_FILE);
  if (existsSync(own)) add(readPublicKey(own));
  const dir = join(dataDir, TRUSTED_DIR);
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.pem')).sort()) add(readPublicKey(join(dir, name)));
  }
  for (const file of extra) add(readPublicKey(file));
  return keys;
}

/**
 * Trust a public key from now on (a restore brings records signed by the key
 * of the installation the backup came from). Returns the file written, or
 * null when the key was already trusted.
 */
export function addTrustedKey(dataDir: string, publicPem: string): string | null {
  const key = createPublicKey(publicPem);
  const id = keyIdOf(key);
  if (trustedKeys(dataDir).has(id)) return null;
  const dir = join(dataDir, TRUSTED_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${id.replace(/[^A-Za-z0-9]/g, '-')}.pem`);
  writeFileSync(file, key.export({ type: 'spki', format: 'pem' }).toString(), { mode: 0o600 });
  return file;
}

function keyError(file: string, error: unknown): DroverError {
  const err = toError(error);
  const code = (error as NodeJS.ErrnoException).code;
  const hint = code === 'EACCES' ? '; run the command as the user drover runs as' : '';
  return new DroverError('config_invalid', `cannot use the audit signing key ${file}: ${err.message}${hint}`, { cause: error });
}

/** Every key this installation trusts, as a backup manifest records them. */
export function installationKeys(dataDir: string): Array<{ keyId: string; publicKey: string }> {
  return [...trustedKeys(dataDir).entries()].map(([keyId, key]) => ({ keyId, publicKey: key.export({ type: 'spki', format: 'pem' }).toString() }));
}
