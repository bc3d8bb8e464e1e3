// The snapshot files' public surface.
export { Snapshotter } from './snapshotter';
export type { SnapshotFileInfo } from './snapshotter';
