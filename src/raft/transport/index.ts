// The Raft peer transport. See transport.ts for the protocol and codec.ts for the frame format.
export { PeerTransport } from './transport';
export type { TransportOptions, PeerStats, DropReason } from './transport';
export { STREAM_PATH, PROTOCOL_VERSION, MAX_PAYLOAD_BYTES } from './protocol';
