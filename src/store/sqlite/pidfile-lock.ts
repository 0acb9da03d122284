/**
 * Single-owner lock for a SQLite store: a pidfile `<path>.lock` created with
 * `wx` (fails if it exists). The engine keeps in-memory state (queue depth
 * counters) that is only right while this process is the only writer, and two
 * runtimes leasing from one file would also double the reaper's work; so a
 * second `drover start` on the same file must refuse, naming the owner.
 *
 * A lock left by a process that died (SIGKILL, power loss) is taken over: the
 * pid in it no longer answers `kill(pid, 0)`.
 */
import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { DroverError } from '../../core/errors.js';

export interface PidfileLock {
  readonly file: string;
  release(): void;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else; still an owner.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isFresh(file: string): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs < 2000;
  } catch {
    return false;
  }
}

function readPid(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Take the lock for the database at `dbPath` or throw `store_unavailable`.
 *
 * @example
 * const lock = acquirePidfileLock('./data/drover.db');
 * try { ... } finally { lock.release(); }
 */
export function acquirePidfileLock(dbPath: string): PidfileLock {
  const file = `${dbPath}.lock`;
  // Two tries: the second follows removing a stale lock. If another process
  // takes it over between our unlink and our create, `wx` fails again and we
  // report that process as the owner.
  for (let tryNo = 0; tryNo < 2; tryNo++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return {
        file,
        release() {
          // Only remove a lock that is still ours (an operator may have removed
          // and another process re-created it).
          if (readPid(file) === process.pid) {
            try {
              unlinkSync(file);
            } catch {
              // Already gone: nothing to release.
            }
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new DroverError('store_unavailable', `cannot create lock file ${file}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    const owner = readPid(file);
    if (owner !== null && isAlive(owner)) {
      throw new DroverError(
        'store_unavailable',
        `database ${dbPath} is in use by drover pid ${owner}; stop it first (or, if that pid is not drover, remove ${file})`,
        { extensions: { pid: owner, lockFile: file } },
      );
    }
    // An empty file may be a live process between its create and its write.
    if (owner === null && isFresh(file)) break;
    // Dead owner, or an empty file left by a crash between create and write.
    try {
      unlinkSync(file);
    } catch {
      // Someone else removed it first; retry the create.
    }
  }
  throw new DroverError('store_unavailable', `database ${dbPath} is being locked by another process; try again`);
}
