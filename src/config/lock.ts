/**
 * The config lock of Astronomer's CLI: an exclusive flock(2) on a sidecar `<file>.lock`, an empty regular file
 * that is created when missing and never deleted. Only the kernel lock counts; the file's existence means nothing.
 *
 * Node has no flock. The lock is taken by a short-lived helper on a file descriptor we own: the helper inherits
 * our descriptor as its fd 3 and flocks it. A flock belongs to the open file description, which we share with the
 * helper, so the lock stays ours after the helper exits, and goes away when we close the descriptor — or when this
 * process dies, so a crashed astro can never leave a lock behind. The helper is util-linux `flock` (every Linux),
 * else `perl` (macOS and most other systems ship it; its flock() is flock(2) there).
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import { UserError } from '../errors.js';

export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

/** Exit status the helpers use for "still held when the time ran out" (EX_TEMPFAIL). */
const HELD = 75;

export class ConfigLockError extends UserError {
  override readonly kind = 'config-lock';
  readonly lockFile: string;
  constructor(lockFile: string, message: string, options: { nextStep?: string; cause?: unknown } = {}) {
    super(message, options);
    this.lockFile = lockFile;
  }
}

export type LockHelper = 'flock' | 'perl';

export interface FileLockOptions {
  /** How long to wait for another holder; default 10 s, as Astronomer's CLI waits. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Which helpers to try, in order (tests pin one). */
  helpers?: readonly LockHelper[];
}

// Polls with LOCK_NB so that a deadline is possible; the lock is on fd 3, which is our descriptor.
const PERL_LOCKER = [
  'use Fcntl qw(:flock); use Time::HiRes qw(sleep time);',
  'open(my $fh, "<&=", 3) or exit 70;',
  'my $deadline = time + $ARGV[0];',
  'until (flock($fh, LOCK_EX | LOCK_NB)) { exit 75 if time >= $deadline; sleep 0.05; }',
  'exit 0;',
].join(' ');

function helperCommand(helper: LockHelper, seconds: string): [string, string[]] {
  return helper === 'flock' ? ['flock', ['-x', '-w', seconds, '-E', String(HELD), '3']] : ['perl', ['-e', PERL_LOCKER, seconds]];
}

type Attempt = { kind: 'locked' } | { kind: 'held' } | { kind: 'missing' } | { kind: 'failed'; detail: string };

function runHelper(helper: LockHelper, fd: number, timeoutMs: number, signal?: AbortSignal): Promise<Attempt> {
  const [command, args] = helperCommand(helper, (timeoutMs / 1000).toFixed(3));
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'ignore', 'pipe', fd],
      signal,
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') resolve({ kind: 'missing' });
      else resolve({ kind: 'failed', detail: error.message });
    });
    child.once('close', (code, sig) => {
      if (code === 0) resolve({ kind: 'locked' });
      else if (code === HELD) resolve({ kind: 'held' });
      else resolve({ kind: 'failed', detail: stderr.trim() || `${command} exited with ${code ?? sig}` });
    });
  });
}

async function openLockFile(lockFile: string): Promise<fs.FileHandle> {
  const open = () => fs.open(lockFile, fsConstants.O_RDONLY | fsConstants.O_CREAT, 0o600);
  try {
    return await open();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EISDIR') throw error;
    // Earlier versions of astro locked with `mkdir <file>.lock`; an empty one left by a crash is no lock now.
    await fs.rmdir(lockFile).catch(() => undefined);
    return open();
  }
}

/** Takes the lock on `lockFile` (creating it), runs `work`, and releases the lock whatever happens. */
export async function withFileLock<T>(lockFile: string, work: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  let handle: fs.FileHandle;
  try {
    handle = await openLockFile(lockFile);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigLockError(lockFile, `The config lock ${lockFile} cannot be opened (${code}).`, {
      cause: error,
      nextStep: `It must be a regular file astro can read and create: check the permissions of ${lockFile} and its folder.`,
    });
  }
  try {
    let attempt: Attempt = { kind: 'missing' };
    for (const helper of options.helpers ?? (['flock', 'perl'] as const)) {
      attempt = await runHelper(helper, handle.fd, timeoutMs, options.signal);
      if (attempt.kind !== 'missing') break;
    }
    options.signal?.throwIfAborted();
    if (attempt.kind === 'held') {
      throw new ConfigLockError(
        lockFile,
        `Timed out after ${(timeoutMs / 1000).toString()}s waiting for the config lock ${lockFile}: another astro process (this CLI or Astronomer's) is holding it.`,
        { nextStep: `Wait for that process to finish, or find it with: fuser -v ${lockFile}` },
      );
    }
    if (attempt.kind === 'missing') {
      throw new ConfigLockError(lockFile, `Cannot lock ${lockFile}: neither the flock command (util-linux) nor perl is installed.`, {
        nextStep: "Install util-linux (flock) or perl, which astro uses to take the same lock as Astronomer's CLI.",
      });
    }
    if (attempt.kind === 'failed') {
      throw new ConfigLockError(lockFile, `Cannot lock ${lockFile}: ${attempt.detail}`);
    }
    return await work();
  } finally {
    // Closing our (last) descriptor of the open file description releases the flock.
    await handle.close();
  }
}
