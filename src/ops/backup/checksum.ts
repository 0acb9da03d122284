/** SHA-256 of a file, streamed (backups can be large). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * @example
 * await sha256File('/backups/drover-backup-…/drover.db'); // '9f86d0…'
 */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
