/**
 * Whether a path lies inside a folder, decided once for everyone: `path.relative` climbs out with `..` segments only,
 * so a name that merely starts with two dots (`..data`) is still inside.
 */
import path from 'node:path';

/** `target` relative to `root` ('' for `root` itself), or undefined when `target` is not `root` or below it. */
export function relativeInside(root: string, target: string): string | undefined {
  const rel = path.relative(root, target);
  return rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel) ? undefined : rel;
}

/** `target` is `root` or lies below it. */
export function isInside(root: string, target: string): boolean {
  return relativeInside(root, target) !== undefined;
}
