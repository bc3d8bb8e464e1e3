// The WAL's public surface; the record format and segment scan stay internal.
export { Wal, DEFAULT_SEGMENT_SIZE } from './wal';
export type { WalOptions, WalContents } from './wal';
export { CorruptWalError } from './segment';
