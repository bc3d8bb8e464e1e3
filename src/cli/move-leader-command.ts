// keel move-leader ID: etcdctl's move-leader. The request must reach the leader (etcd answers "not leader"
// otherwise), so the command finds it among --endpoints by their status, then asks it to hand over.

import type { Argv } from 'yargs';
import { idToJson } from '../kv/gateway/fields';
import { errorFromJson } from '../kv/gateway-json';
import { MOVE_LEADER_PATH } from '../server/leader-transfer';
import { checkTimeout, parseEndpoints, type CliContext, type GlobalArgs, type RootArgs } from './context';
import { isLeader, statusOfEndpoints } from './endpoint-commands';
import { UsageError } from './errors';

/** A member id as etcdctl takes it: hex, up to 16 digits; returned as Keel's 16-digit form. */
export function parseMemberId(raw: string): string {
  const s = raw.trim().toLowerCase();
  if (!/^[0-9a-f]{1,16}$/.test(s) || /^0+$/.test(s)) {
    throw new UsageError(`"${raw}" is not a member id (hexadecimal, as \`keel member list\` prints it)`);
  }
  return s.padStart(16, '0');
}

async function moveLeaderCommand(ctx: CliContext, a: GlobalArgs & { id: string }): Promise<number> {
  const target = parseMemberId(a.id);
  const timeoutMs = checkTimeout(a.commandTimeout);
  const statuses = await statusOfEndpoints(parseEndpoints(a.endpoints), timeoutMs);
  const leader = statuses.find((r) => 'status' in r && isLeader(r.status));
  if (leader === undefined || !('status' in leader)) {
    throw new Error('no leader among --endpoints (give the endpoints of every member)');
  }
  const from = leader.status.header.memberId;
  const res = await fetch(`${leader.endpoint}${MOVE_LEADER_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ targetID: idToJson(target) }),
    signal: AbortSignal.timeout(timeoutMs + 5000),
  });
  const text = await res.text();
  if (!res.ok) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    throw errorFromJson(res.status, json);
  }
  ctx.print(`Leadership transferred from ${from.replace(/^0+/, '')} to ${target.replace(/^0+/, '')}`);
  return 0;
}

export function registerMoveLeaderCommand(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y.command(
    'move-leader <id>',
    'Hand leadership to another voting member (hex id); the leader refuses new writes meanwhile',
    (b) => b.positional('id', { type: 'string', demandOption: true, describe: 'the member id, in hex' }),
    (argv) => ctx.run(() => moveLeaderCommand(ctx, { ...argv, id: argv.id })),
  );
}
