// gRPC and the HTTP client API on one port: the first bytes of a connection decide (the HTTP/2 preface ->
// gRPC, anything else -> node:http, WebSocket upgrades included); partial prefaces, silent connections,
// a busy port, close(), and the :authority repair for etcd's Go client.

import http from 'node:http';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import WebSocket from 'ws';
import { etcdServices } from '../../src/server/grpc/proto';
import { HTTP2_PREFACE, classify, listenWithGrpc } from '../../src/server/grpc/protocol-mux';
import { createGrpcServer } from '../../src/server/grpc/server';
import { FakeMember, FakeStore } from '../server/fixtures/fake-kv-service';
import { call, clientsFor, closeClients, sleep, startGrpcFake, startMuxFake, until } from './fixtures/grpc';

const b = (s: string): Buffer => Buffer.from(s);

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the server sends until it closes the connection or `ms` passes. */
function collect(s: net.Socket, ms: number): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closed = false;
    s.on('data', (c: Buffer) => chunks.push(c));
    const timer = setTimeout(() => resolve({ data: Buffer.concat(chunks), closed }), ms);
    s.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed });
    });
  });
}

t.test('classify: decided as soon as the bytes differ from the preface', async (t) => {
  t.equal(classify(b('')), undefined);
  t.equal(classify(b('P')), undefined);
  t.equal(classify(b('PRI * HTTP/2')), undefined);
  t.equal(classify(b('PO')), 'http');
  t.equal(classify(b('GET / HTTP/1.1\r\n')), 'http');
  t.equal(classify(b('PRI * HTTP/1.1')), 'http');
  t.equal(classify(HTTP2_PREFACE), 'grpc');
  t.equal(classify(Buffer.concat([HTTP2_PREFACE, b('more')])), 'grpc');
  t.equal(classify(b('\x16\x03\x01')), 'http', 'TLS goes to node:http, which answers 400');
});

t.test('one port: gRPC, the JSON gateway, /health, and the native stream upgrade', async (t) => {
  const f = await startMuxFake(t);
  const clients = clientsFor(`127.0.0.1:${f.port}`);
  t.teardown(() => closeClients(clients));
  await call(clients.KV, 'Put', { key: b('k'), value: b('over gRPC') });

  const r = await fetch(`${f.url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b('k').toString('base64') }) });
  t.equal(r.status, 200);
  const json = (await r.json()) as { kvs: { value: string }[]; header: { revision: string } };
  t.equal(Buffer.from(json.kvs[0].value, 'base64').toString(), 'over gRPC');
  t.equal(json.header.revision, '2');
  t.equal((await fetch(`${f.url}/health`)).status, 200);

  // Keep-alive: several requests on one connection.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  for (let i = 0; i < 3; i++) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${f.url}/v3/kv/put`, { method: 'POST', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ key: b(`h${i}`).toString('base64'), value: b('v').toString('base64') }));
    });
    t.equal(status, 200, `keep-alive request ${i}`);
  }

  const ws = new WebSocket(`ws://127.0.0.1:${f.port}/v3/stream`);
  const opened = await new Promise<number>((resolve, reject) => {
    ws.on('upgrade', (res) => resolve(res.statusCode ?? 0));
    ws.on('error', reject);
  });
  t.equal(opened, 101, 'the native stream upgrade goes through node:http');
  ws.terminate();
  const refused = new WebSocket(`ws://127.0.0.1:${f.port}/v3/nowhere`);
  const status = await new Promise<number>((resolve) => refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
  t.equal(status, 404, "the stream server's refusal of another path");
  refused.on('error', () => undefined);

  // The gRPC connection still works after all that.
  t.equal((await call<{ count: string }>(clients.KV, 'Range', { key: b('h'), range_end: b('i') })).count, '3');
});

t.test('a preface in pieces is proxied whole; an HTTP request in pieces is decided at its second byte', async (t) => {
  const f = await startMuxFake(t);
  const s = await connect(f.port);
  t.teardown(() => s.destroy());
  const got = collect(s, 1000);
  s.write(HTTP2_PREFACE.subarray(0, 5));
  await sleep(50);
  s.write(HTTP2_PREFACE.subarray(5, 17));
  await sleep(50);
  // The rest of the preface and an empty SETTINGS frame.
  s.write(Buffer.concat([HTTP2_PREFACE.subarray(17), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
  const { data } = await got;
  t.ok(data.length >= 9, 'the gRPC server answered');
  t.equal(data[3], 4, 'with a SETTINGS frame');

  const h = await connect(f.port);
  t.teardown(() => h.destroy());
  const answer = collect(h, 2000);
  h.write('P');
  await sleep(50);
  const body = JSON.stringify({ key: b('k').toString('base64') });
  h.write(`OST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  const text = (await answer).data.toString();
  t.match(text, /^HTTP\/1\.1 200 OK/);
});

t.test('a connection that says nothing is closed after the timeout', async (t) => {
  const member = new FakeMember(new FakeStore(), 'm1');
  const listener = await listenWithGrpc('http://127.0.0.1:0', http.createServer(), createGrpcServer(member), {
    firstBytesTimeoutMs: 200,
  });
  t.teardown(() => listener.close());
  const s = await connect(listener.port);
  const t0 = Date.now();
  const { closed, data } = await collect(s, 3000);
  t.ok(closed, 'closed');
  t.equal(data.length, 0);
  t.ok(Date.now() - t0 >= 150, 'not before the timeout');
});

t.test('a busy port: the same message as the member gives', async (t) => {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const port = (holder.address() as net.AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const grpcServer = createGrpcServer(new FakeMember(new FakeStore(), 'm1'));
  await t.rejects(listenWithGrpc(url, http.createServer(), grpcServer), {
    message: `client URL ${url}: port ${port} is already in use`,
  });
});

t.test('close(): stops accepting, cuts gRPC and HTTP connections, shuts the gRPC server down', async (t) => {
  const member = new FakeMember(new FakeStore(), 'm1');
  const httpServer = http.createServer((_req, res) => {
    // Never answers: the connection stays open until close() cuts it.
    res.flushHeaders();
  });
  const listener = await listenWithGrpc('http://127.0.0.1:0', httpServer, createGrpcServer(member));
  const clients = clientsFor(`127.0.0.1:${listener.port}`);
  t.teardown(() => closeClients(clients));
  const watch = (clients.Watch as unknown as { Watch(): grpc.ClientDuplexStream<object, object> }).Watch();
  let watchError: grpc.ServiceError | undefined;
  watch.on('error', (e: grpc.ServiceError) => (watchError = e));
  watch.on('data', () => undefined);
  watch.write({ create_request: { key: b('a') } });
  await until(() => member.streams.size === 1);
  const httpClosed = new Promise<void>((resolve) => {
    const req = http.request(`http://127.0.0.1:${listener.port}/hang`, (res) => {
      res.on('close', () => resolve());
      res.resume();
    });
    req.on('error', () => resolve());
    req.end();
  });
  await sleep(50);

  await listener.close();
  await httpClosed;
  t.pass('the HTTP connection was cut');
  await until(() => watchError !== undefined, 5000, 'the watch to fail');
  t.equal(watchError!.code, grpc.status.UNAVAILABLE);
  await until(() => member.streams.size === 0, 5000, 'the member stream to close');
  // The port is free again, and the gRPC server's own port refuses.
  const again = net.createServer();
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.listen(listener.port, '127.0.0.1', resolve);
  });
  again.close();
});

t.test("etcd's Go client's :authority (http://host:port) is repaired on the way", async (t) => {
  const f = await startMuxFake(t);
  const Maintenance = grpc.makeGenericClientConstructor(etcdServices().Maintenance, 'Maintenance');
  const KV = grpc.makeGenericClientConstructor(etcdServices().KV, 'KV');
  const authority = { 'grpc.default_authority': `http://127.0.0.1:${f.port}` };

  // The same services on a bare grpc-js server, without the mux in front.
  const bare = await startGrpcFake(t);
  const direct = new Maintenance(bare.address, grpc.credentials.createInsecure(), authority);
  t.teardown(() => direct.close());
  const refused = await call(direct, 'Status', {}).catch((e: grpc.ServiceError) => e);
  t.match(refused, { code: grpc.status.INTERNAL }, "Node's HTTP/2 refuses it without the repair");

  const m = new Maintenance(`127.0.0.1:${f.port}`, grpc.credentials.createInsecure(), authority);
  t.teardown(() => m.close());
  const kv = new KV(`127.0.0.1:${f.port}`, grpc.credentials.createInsecure(), {
    ...authority,
    channelOverride: m.getChannel(),
  });
  t.equal((await call<{ version: string }>(m, 'Status', {})).version, '3.4.0-keel');
  // Many requests on the connection: later ones name the authority by its HPACK table index.
  for (let i = 0; i < 50; i++) {
    const md = new grpc.Metadata();
    md.set('x-request', `r${i}-${'v'.repeat(i * 40)}`);
    await new Promise<void>((resolve, reject) =>
      (kv as unknown as Record<string, Function>).Put({ key: b(`k${i}`), value: b('v') }, md, (err: Error | null) =>
        err ? reject(new Error(`put ${i}: ${err.message}`)) : resolve(),
      ),
    );
  }
  t.equal((await call<{ count: string }>(kv, 'Range', { key: b('k'), range_end: b('l') })).count, '50');
});
