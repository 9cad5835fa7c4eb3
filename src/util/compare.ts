/**
 * Code-unit order of two strings, as `sort()` without a comparator gives: right for ISO 8601 times and ids, and free,
 * where `localeCompare` first loads ICU's collator (about 6 ms of a command that sorts once).
 */
export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
