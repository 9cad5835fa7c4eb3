/**
 * Reading project files for what astro packs (the DAG bundle, the image's build context): opened so that a file
 * swapped for something else after the walk saw it cannot slip through, and read without a turn of the event loop
 * when small.
 */
import fs from 'node:fs';

// O_NOFOLLOW: a file swapped for a symlink after the walk checked it must not smuggle its target in.
// O_NONBLOCK: a file swapped for a named pipe must not hang the open.
export const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/** Up to `size` bytes of `fd` from `position` (fewer if the file shrank meanwhile); a file whose stat says 0 is read to its end. */
export function readUpTo(fd: number, size: number, position = 0): Buffer {
  if (size === 0 && position === 0) return fs.readFileSync(fd);
  const data = Buffer.allocUnsafe(size);
  let done = 0;
  while (done < size) {
    const n = fs.readSync(fd, data, done, size - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === size ? data : data.subarray(0, done);
}
