// The member-local watch hub (issue 3, watch): see src/kv/watch/hub.ts. The member creates one WatchHub
// over its state machine, feeds it every apply (onApplied) and snapshot restore (onRestore), and answers
// KvService.watch(sink) with hub.openStream(sink).

export { WatchHub, type WatchHistory, type WatchHubOptions } from './watch/hub';
