// Which member leads, as the members themselves say it. Used to wait for an election to settle (tests,
// benchmarks): a leader counts only once every endpoint asked answers and names the same member, and that
// member is one of them.

import { KeelHttpClient } from './http-client';

/** The endpoint of the leader that every one of `endpoints` names, or undefined (no answer, no agreement). */
export async function agreedLeader(endpoints: readonly string[], timeoutMs = 500): Promise<string | undefined> {
  const statuses = await Promise.all(
    endpoints.map(async (e) => {
      try {
        return await new KeelHttpClient({ endpoints: [e], requestTimeoutMs: timeoutMs }).status(e);
      } catch {
        return undefined;
      }
    }),
  );
  const named = new Set(statuses.map((s) => s?.leader ?? ''));
  if (named.size !== 1 || named.has('')) return undefined;
  const [leader] = named;
  const at = statuses.findIndex((s) => s?.header.memberId === leader);
  return at < 0 ? undefined : endpoints[at];
}
