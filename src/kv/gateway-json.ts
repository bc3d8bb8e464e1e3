// Translation between the internal KV API (api.ts) and etcd's gRPC-gateway JSON, both ways: the server
// encodes responses and parses requests, the client encodes requests and decodes responses. No HTTP code
// here, so that the client can import it alone. The pieces live in src/kv/gateway/, one file per service;
// fields.ts says how protobuf JSON is written and read (and why Keel refuses unknown request fields).

export * from './gateway/fields';
export * from './gateway/kv-json';
export * from './gateway/lease-json';
export * from './gateway/watch-json';
export * from './gateway/status-json';
export * from './gateway/cluster-json';
export * from './gateway/errors-json';
