/** A lazy value made at most once: the first call starts `make`, every call gets its promise. */
export function once<T>(make: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= make());
}
