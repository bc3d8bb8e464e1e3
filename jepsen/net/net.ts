// The network between the members under test (the Net contract of types.ts): one TCP proxy in front of
// each member, listening on its advertised peerUrl and forwarding to its listenPeerUrl. The proxy learns
// the sender of each connection from the request head (see sender.ts), so a connection dialed by A to B
// belongs to the link A -> B, and that link's fault applies to both directions of its bytes (as on a slow
// or broken cable: requests and their answers alike).
//
// What a link means depends on who dials: Keel members each dial their own stream to every peer and send
// their messages on it, so A -> B carries A's messages to B. etcd's pipeline (POST /raft) is the same, but
// its streams are dialed by the receiver (B dials A to read A's messages), so for etcd a one-way block also
// silences some traffic of the other direction. Partitions block both directions and mean the same on both.
//
// The sender of a connection is read from the head of its first request, or, failing that, from any later
// request on it (HTTP keep-alive: etcd's prober opens connections its pipeline then reuses). A connection
// whose sender is unknown (no sender header yet, or a member id nobody identified) passes unharmed: it
// cannot be put on any link. Member ids identified later apply to connections already open.

import net, { type Server, type Socket } from 'node:net';
import type { LinkFault, Net, NodeInfo, Rng } from '../types';
import { LinkTable } from './links';
import { ProxiedConnection } from './proxied-connection';
import { parseMemberId } from './sender';

export interface NetOptions {
  log: (msg: string) => void;
  /** draws for jitter and drops (default Math.random: socket timing makes them nondeterministic anyway) */
  rng?: Rng;
}

interface Proxy {
  node: NodeInfo;
  server: Server;
  conns: Set<ProxiedConnection>;
}

/** host and port of an http:// URL with an explicit port; `what` names the URL in the error. */
function hostPort(url: string, what: string): { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${what} is not a URL: "${url}"`);
  }
  if (u.protocol !== 'http:') throw new Error(`${what} must be an http:// URL, got "${url}"`);
  if (u.port === '') throw new Error(`${what} must name its port explicitly, got "${url}"`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
}

export function createNet(opts: NetOptions): Net {
  const links = new LinkTable();
  const proxies = new Map<string, Proxy>();
  /** member id -> name (ids compared as numbers: with or without leading zeros) */
  const names = new Map<bigint, string>();
  const random = opts.rng ? () => opts.rng!.next() : Math.random;
  let closed = false;

  /** Cuts every open connection on a blocked link (a new fault, or a sender just identified). */
  function enforceBlocks(): void {
    for (const proxy of proxies.values()) {
      for (const conn of proxy.conns) {
        if (conn.fault()?.block) conn.cut();
      }
    }
  }

  function listen(server: Server, host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen({ host, port }, () => {
        server.off('error', onError);
        resolve();
      });
    });
  }

  return {
    async addNode(node: NodeInfo): Promise<void> {
      if (closed) throw new Error(`cannot add ${node.name}: the network is closed`);
      if (links.has(node.name)) throw new Error(`node "${node.name}" is already on the network`);
      const front = hostPort(node.peerUrl, `${node.name}'s peerUrl`);
      const back = hostPort(node.listenPeerUrl, `${node.name}'s listenPeerUrl`);
      if (front.host === back.host && front.port === back.port) {
        throw new Error(`${node.name}'s peerUrl and listenPeerUrl are the same address (${node.peerUrl}): the proxy needs its own port`);
      }
      const conns = new Set<ProxiedConnection>();
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (client: Socket) => {
        const conn = new ProxiedConnection(client, {
          to: node.name,
          backendHost: back.host,
          backendPort: back.port,
          senderName: (id) => names.get(id),
          linkFault: (from, to) => links.get(from, to),
          random,
          onClose: (c) => conns.delete(c),
        });
        conns.add(conn); // it cannot have closed yet: socket events come later
      });
      try {
        await listen(server, front.host, front.port);
      } catch (err) {
        throw new Error(`the link proxy of ${node.name} cannot listen on ${front.host}:${front.port}: ${(err as Error).message}`);
      }
      // Errors after listening (none expected on a listening socket) must not crash the harness.
      server.on('error', (err) => opts.log(`link proxy of ${node.name}: ${err.message}`));
      links.addName(node.name);
      proxies.set(node.name, { node, server, conns });
    },

    identify(name: string, memberIdHex: string): void {
      const id = parseMemberId(memberIdHex);
      const other = names.get(id);
      if (other !== undefined && other !== name) throw new Error(`member id ${memberIdHex} is already ${other}'s, cannot also be ${name}'s`);
      names.set(id, name);
      enforceBlocks();
    },

    setLink(from: string, to: string, fault: LinkFault | undefined): void {
      links.set(from, to, fault);
      if (fault?.block) enforceBlocks();
    },

    partition(groups: readonly (readonly string[])[]): void {
      links.partition(groups);
      enforceBlocks();
    },

    heal(): void {
      links.heal();
    },

    describe(): string {
      return links.describe();
    },

    async close(): Promise<void> {
      closed = true;
      const done: Promise<void>[] = [];
      for (const proxy of proxies.values()) {
        done.push(new Promise<void>((resolve) => proxy.server.close(() => resolve())));
        for (const conn of proxy.conns) conn.close();
      }
      proxies.clear();
      await Promise.all(done);
    },
  };
}
