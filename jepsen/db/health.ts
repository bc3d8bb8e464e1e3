// GET /health on a member's client URL: the cheapest way to see whether a (re)started member is up. Plain
// HTTP rather than gRPC, because a gRPC channel to a member that was just down may still be backing off.

import http from 'node:http';

export interface HealthAnswer {
  status: number;
  body: string;
}

/** The member's answer to GET /health, or undefined when it does not answer within `timeoutMs`. */
export function probeHealth(clientUrl: string, timeoutMs: number): Promise<HealthAnswer | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: HealthAnswer | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    const req = http.get(`${clientUrl}/health`, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => done(undefined));
    });
    req.on('error', () => done(undefined));
    const timer = setTimeout(() => {
      req.destroy();
      done(undefined);
    }, timeoutMs);
  });
}

/**
 * Whether an answer shows that the member got past opening its data (its WAL above all). etcd reads its WAL
 * before it serves clients, so any answer will do. Keel binds its client port first and then opens its data:
 * only a healthy answer or an unhealthy one about the cluster (no leader, an alarm) proves its Raft node exists.
 */
export function showsDataOpened(target: 'keel' | 'etcd', a: HealthAnswer): boolean {
  if (target === 'etcd') return true;
  return a.status === 200 || /NO LEADER|ALARM/.test(a.body);
}
