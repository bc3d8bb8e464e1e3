// The cluster under test, for the runner: createCluster() gives a ClusterUnderTest (types.ts) of Keel or etcd
// members on loopback behind the run's link proxies.

export { createCluster, type CreateClusterOptions } from './cluster';
export { corruptWal, keelFrames, etcdFrames, type WalDamage, type Frame } from './wal-corrupt';
