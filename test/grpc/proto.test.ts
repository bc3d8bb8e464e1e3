// Keel's own .proto files for etcd's API (proto/etcd/**): found from src/ and from dist/, with their header,
// and checked against the copy of etcd's .proto files that the `etcd3` npm client ships: every message,
// field number, field type, enum value and method must be the same (what differs is listed and explained).

import fs from 'node:fs';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import t from 'tap';
import { ETCD_PROTO_DIR, PROTO_ROOT, etcdPackageDefinition, etcdServices } from '../../src/server/grpc/proto';

const REPO = path.resolve(__dirname, '..', '..');

t.test('the proto dir is found from src/ and from dist/, three levels up', async (t) => {
  t.equal(PROTO_ROOT, path.join(REPO, 'proto'));
  t.equal(path.resolve(REPO, 'dist', 'server', 'grpc', '..', '..', '..', 'proto'), PROTO_ROOT);
  for (const f of ['etcdserverpb/rpc.proto', 'mvccpb/kv.proto', 'authpb/auth.proto']) {
    const text = fs.readFileSync(path.join(ETCD_PROTO_DIR, f), 'utf8');
    t.match(text, /^\/\/ Written for Keel to match etcd 3\.4's wire format/, `${f}: header`);
    t.notMatch(text, /option \((gogoproto|google\.api\.http)/, `${f}: no gogoproto options or google.api.http annotations`);
  }
  const compiled = path.join(REPO, 'dist', 'server', 'grpc', 'proto.js');
  if (!fs.existsSync(compiled)) {
    t.comment('dist/ not built: the compiled loader is not checked');
    return;
  }
  const dist = require(compiled) as typeof import('../../src/server/grpc/proto');
  t.equal(dist.PROTO_ROOT, PROTO_ROOT, 'the compiled loader finds the same dir');
  t.same(Object.keys(dist.etcdServices()), Object.keys(etcdServices()));
});

t.test('the services and their methods', async (t) => {
  const s = etcdServices();
  t.same(Object.keys(s.KV), ['Range', 'Put', 'DeleteRange', 'Txn', 'Compact']);
  t.same(Object.keys(s.Watch), ['Watch']);
  t.same(Object.keys(s.Lease), ['LeaseGrant', 'LeaseRevoke', 'LeaseKeepAlive', 'LeaseTimeToLive', 'LeaseLeases']);
  t.same(Object.keys(s.Cluster), ['MemberAdd', 'MemberRemove', 'MemberUpdate', 'MemberList', 'MemberPromote']);
  t.same(Object.keys(s.Maintenance), ['Alarm', 'Status', 'Defragment', 'Hash', 'HashKV', 'Snapshot', 'MoveLeader']);
  t.equal(Object.keys(s.Auth).length, 16);
  t.equal(s.KV.Range.path, '/etcdserverpb.KV/Range');
  t.same([s.Watch.Watch.requestStream, s.Watch.Watch.responseStream], [true, true]);
  t.same([s.Lease.LeaseKeepAlive.requestStream, s.Lease.LeaseKeepAlive.responseStream], [true, true]);
  t.same([s.Maintenance.Snapshot.requestStream, s.Maintenance.Snapshot.responseStream], [false, true]);
});

// ---- against etcd3's copy of etcd's .proto files ---------------------------------------------------------

interface Field {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}
interface EnumValue {
  name: string;
  number: number;
}
interface Descriptor {
  name: string;
  field?: Field[];
  enumType?: { name: string; value: EnumValue[] }[];
  value?: EnumValue[];
}
type Definition = Record<string, { format?: string; type?: Descriptor } | Record<string, unknown>>;

/** Everything that goes on the wire, by fully qualified name: fields, enum values, methods. */
function wireShape(def: Definition): Map<string, string> {
  const out = new Map<string, string>();
  const last = (typeName: string): string => typeName.split('.').pop() ?? '';
  // etcd3 renames enum values (NOT_EQUAL -> NotEqual); only the numbers are on the wire.
  const enumName = (n: string): string => n.replace(/_/g, '').toLowerCase();
  const enums = (prefix: string, values: EnumValue[]): void => {
    for (const v of values) out.set(`${prefix}=${v.number}`, enumName(v.name));
  };
  for (const [name, entry] of Object.entries(def)) {
    if ('format' in entry && typeof entry.format === 'string') {
      const d = entry.type as Descriptor;
      if (entry.format.includes('EnumDescriptorProto')) {
        enums(name, d.value ?? []);
        continue;
      }
      for (const f of d.field ?? []) out.set(`${name}.${f.name}`, `${f.number} ${f.label} ${f.type} ${last(f.typeName)}`);
      for (const e of d.enumType ?? []) enums(`${name}.${e.name}`, e.value);
      continue;
    }
    for (const [method, m] of Object.entries(entry as Record<string, protoLoader.MethodDefinition<object, object>>)) {
      const req = (m.requestType.type as Descriptor).name;
      const resp = (m.responseType.type as Descriptor).name;
      const io = `${m.requestStream ? 'stream ' : ''}${req} -> ${m.responseStream ? 'stream ' : ''}${resp}`;
      out.set(`${name}/${method}`, `${m.path} ${io}`);
    }
  }
  return out;
}

/** In etcd3's copy (etcd 3.5's API) and not in etcd 3.4's. */
const ETCD_35_ONLY = [
  /^etcdserverpb\.AuthStatus(Request|Response)/,
  /^etcdserverpb\.Auth\/AuthStatus$/,
  /^etcdserverpb\.Downgrade(Request|Response)/,
  /^etcdserverpb\.Maintenance\/Downgrade$/,
  /^etcdserverpb\.MemberListRequest\.linearizable$/,
];

t.test("field numbers and types are etcd's (checked against the etcd3 package's copy)", async (t) => {
  const theirsFile = path.join(REPO, 'node_modules', 'etcd3', 'proto', 'rpc.proto');
  if (!fs.existsSync(theirsFile)) {
    t.comment('the etcd3 package is not installed: nothing to compare with');
    return;
  }
  const theirs = wireShape(protoLoader.loadSync(theirsFile, { keepCase: true }) as unknown as Definition);
  const mine = wireShape(etcdPackageDefinition() as unknown as Definition);
  t.ok(mine.size > 250, `${mine.size} fields, values and methods compared`);
  const problems: string[] = [];
  for (const [k, v] of theirs) {
    if (ETCD_35_ONLY.some((re) => re.test(k))) continue;
    if (!mine.has(k)) problems.push(`missing: ${k} (${v})`);
    else if (mine.get(k) !== v) problems.push(`differs: ${k}: ours ${mine.get(k)}, etcd's ${v}`);
  }
  for (const k of mine.keys()) if (!theirs.has(k)) problems.push(`only ours: ${k}`);
  t.same(problems, []);
});
