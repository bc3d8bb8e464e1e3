// Small helpers shared by the metric files.

/**
 * A member id as etcd writes it in labels (types.ID.String(): lower-case hex without leading zeros), so
 * that a To / From / server_id label matches what `etcdctl member list` prints. Keel's ids are 16 hex
 * digits; anything else is left as it is.
 */
export function etcdIdLabel(id: string): string {
  if (!/^[0-9a-fA-F]{1,16}$/.test(id)) return id;
  return BigInt(`0x${id}`).toString(16);
}

/**
 * The value of a lazily read source, or undefined if it has none yet or fails: while a member starts or
 * stops its parts come and go, and one missing value must not fail the whole scrape.
 */
export function readSafely<T>(source: () => T | undefined): T | undefined {
  try {
    return source();
  } catch {
    return undefined;
  }
}

/** readSafely for a source that may answer later (the size of the database on disk). */
export async function readSafelyAsync<T>(source: () => T | undefined | Promise<T | undefined>): Promise<T | undefined> {
  try {
    return await source();
  } catch {
    return undefined;
  }
}
