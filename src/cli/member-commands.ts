// keel member list|add|remove|promote: etcdctl's member commands and their output, over the HTTP JSON
// gateway (/v3/cluster/member/...), whatever --transport says: the native stream has no membership calls.
// Ids are read and printed in hex as etcdctl does; -w json prints the gateway's JSON (ids as decimal
// strings).

import type { Argv } from 'yargs';
import { KeelHttpClient } from '../client/http-client';
import type { MemberAddResponse } from '../kv/api';
import {
  memberAddResponseToJson,
  memberListResponseToJson,
  memberPromoteResponseToJson,
  memberRemoveResponseToJson,
} from '../kv/gateway-json';
import { memberNameProblem } from '../kv/validate';
import { normalizeUrl } from '../server/options';
import { checkTimeout, parseEndpoints, type CliContext, type GlobalArgs, type RootArgs } from './context';
import { UsageError } from './errors';
import {
  MEMBER_LIST_HEADERS,
  memberAddedLine,
  memberListLines,
  memberListRow,
  memberPromotedLine,
  memberRemovedLine,
} from './etcdctl-simple';
import { errorMessage, renderTable } from './format';
import { parseMemberId } from './move-leader-command';

/** Runs `body` with an HTTP client for --endpoints and --command-timeout, closed afterwards. */
export async function withHttpClient<T>(a: GlobalArgs, body: (c: KeelHttpClient) => Promise<T>): Promise<T> {
  const client = new KeelHttpClient({ endpoints: parseEndpoints(a.endpoints), requestTimeoutMs: checkTimeout(a.commandTimeout) });
  try {
    return await body(client);
  } finally {
    await client.close().catch(() => {});
  }
}

// ---- member list ---------------------------------------------------------------------------------------

export interface MemberListArgs extends GlobalArgs {
  consistency: string;
  'write-out'?: string;
}

export async function memberListCommand(ctx: CliContext, a: MemberListArgs): Promise<number> {
  if (a.consistency !== 'l' && a.consistency !== 's') {
    throw new UsageError(`--consistency must be l or s (got ${JSON.stringify(a.consistency)})`);
  }
  return withHttpClient(a, async (client) => {
    const resp = await client.memberList({ linearizable: a.consistency === 'l' });
    if (a.json) ctx.printJson(memberListResponseToJson(resp));
    else if (a['write-out'] === 'table') {
      ctx.io.out(renderTable(MEMBER_LIST_HEADERS, resp.members.map(memberListRow), 'center'));
    } else ctx.printLines(memberListLines(resp.members));
    return 0;
  });
}

// ---- member add ----------------------------------------------------------------------------------------

export interface MemberAddArgs extends GlobalArgs {
  name?: string;
  extra?: string[];
  peerUrls?: string;
  learner: boolean;
}

/** --peer-urls: one http://HOST:PORT (etcd takes a comma-separated list; a Keel member has one peer URL). */
export function parsePeerUrl(raw: string | undefined): string {
  if (raw === undefined || raw.trim() === '') {
    throw new UsageError('member peer urls not provided (--peer-urls http://HOST:PORT)');
  }
  const parts = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length !== 1) {
    throw new UsageError(`--peer-urls: a Keel member has exactly one peer URL (got ${parts.length}: "${raw}")`);
  }
  let url: string;
  try {
    url = normalizeUrl(parts[0], '--peer-urls');
  } catch (e) {
    throw new UsageError(errorMessage(e));
  }
  const u = new URL(parts[0]);
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || u.port === '0') {
    throw new UsageError(`--peer-urls: "${parts[0]}" must be just http://HOST:PORT`);
  }
  return url;
}

function memberName(a: MemberAddArgs): string {
  if (a.name === undefined || a.name === '') {
    throw new UsageError('member name not provided (keel member add NAME --peer-urls http://HOST:PORT)');
  }
  const extra = a.extra ?? [];
  if (extra.length > 0) {
    // etcdctl's hint for the usual mistake: the peer URL given as an argument.
    const url = extra.find((s) => s.toLowerCase().startsWith('http'));
    throw new UsageError(`too many arguments${url === undefined ? '' : `, did you mean --peer-urls=${url}`}`);
  }
  const name = String(a.name);
  const problem = memberNameProblem(name);
  if (problem !== undefined) throw new UsageError(`member name ${JSON.stringify(name)} ${problem}`);
  return name;
}

/** Go's %q for the strings printed here (names are printable and URLs ASCII): only " and \ are escaped. */
function goQuote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A word for a POSIX shell: as is when it is plain, otherwise in single quotes. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_.,:/=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** etcdctl's ETCD_INITIAL_CLUSTER: NAME=URL for every peer URL of every member, the new one under the name
 *  it was added with. Members that have no name yet (added by etcdctl without one, not started) are left
 *  out: a NAME=URL list cannot hold them. */
export function initialClusterOf(resp: MemberAddResponse, newName: string): string {
  const conf: string[] = [];
  let sawNew = false;
  for (const m of resp.members) {
    const isNew = m.id === resp.member.id;
    sawNew ||= isNew;
    const name = isNew ? newName : m.name;
    if (name === '') continue;
    for (const u of m.peerUrls) conf.push(`${name}=${u}`);
  }
  if (!sawNew) for (const u of resp.member.peerUrls) conf.push(`${newName}=${u}`);
  return conf.join(',');
}

/** What etcdctl prints after adding a member (simple format), then how to start it with Keel. */
export function memberAddLines(resp: MemberAddResponse, name: string): string[] {
  const cluster = initialClusterOf(resp, name);
  const peerUrls = resp.member.peerUrls.join(',');
  return [
    memberAddedLine(resp),
    '',
    `ETCD_NAME=${goQuote(name)}`,
    `ETCD_INITIAL_CLUSTER=${goQuote(cluster)}`,
    `ETCD_INITIAL_ADVERTISE_PEER_URLS=${goQuote(peerUrls)}`,
    'ETCD_INITIAL_CLUSTER_STATE="existing"',
    `# start it (fill in <CLIENT-URL> and <DATA-DIR>, a new empty dir): keel node --name ${shellWord(name)} ` +
      `--initial-cluster ${goQuote(cluster).replace(/[$`]/g, (c) => `\\${c}`)} --initial-cluster-state existing ` +
      `--listen-peer-urls ${peerUrls} --listen-client-urls <CLIENT-URL> --data-dir <DATA-DIR>`,
  ];
}

export async function memberAddCommand(ctx: CliContext, a: MemberAddArgs): Promise<number> {
  const name = memberName(a);
  const peerUrl = parsePeerUrl(a.peerUrls);
  return withHttpClient(a, async (client) => {
    const resp = await client.memberAdd({ peerUrls: [peerUrl], isLearner: a.learner ? true : undefined, name });
    if (a.json) ctx.printJson(memberAddResponseToJson(resp));
    else ctx.printLines(memberAddLines(resp, name));
    return 0;
  });
}

// ---- member remove / promote ---------------------------------------------------------------------------

export interface MemberIdArgs extends GlobalArgs {
  id?: string;
}

function memberIdArg(a: MemberIdArgs): string {
  if (a.id === undefined || String(a.id) === '') throw new UsageError('member ID is not provided');
  return parseMemberId(String(a.id));
}

export async function memberRemoveCommand(ctx: CliContext, a: MemberIdArgs): Promise<number> {
  const id = memberIdArg(a);
  return withHttpClient(a, async (client) => {
    const resp = await client.memberRemove({ id });
    if (a.json) ctx.printJson(memberRemoveResponseToJson(resp));
    else ctx.print(memberRemovedLine(id, resp.header.clusterId));
    return 0;
  });
}

export async function memberPromoteCommand(ctx: CliContext, a: MemberIdArgs): Promise<number> {
  const id = memberIdArg(a);
  return withHttpClient(a, async (client) => {
    const resp = await client.memberPromote({ id });
    if (a.json) ctx.printJson(memberPromoteResponseToJson(resp));
    else ctx.print(memberPromotedLine(id, resp.header.clusterId));
    return 0;
  });
}

// ---- registration --------------------------------------------------------------------------------------

const idPositional = { type: 'string', describe: 'the member id, in hex (as `keel member list` prints it)' } as const;

export function registerMemberCommands(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y.command('member', 'Cluster membership: list, add, remove, promote', (b) =>
    b
      .command(
        'list',
        'One line per member: ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER (-w simple|table|json)',
        (c) =>
          c
            // etcdctl's table format: added to the global -w's choices for this command.
            .choices('write-out', ['table'])
            .option('consistency', {
              type: 'string',
              choices: ['l', 's'],
              default: 'l',
              requiresArg: true,
              describe: "l: linearizable (confirmed with the leader), s: the answering member's own view",
            }),
        (argv) => ctx.run(() => memberListCommand(ctx, argv)),
      )
      .command(
        'add [name]',
        'Add a member (a learner with --learner); prints the settings to start it with',
        (c) =>
          c
            // Strict about options only, so that the usual mistake (the URL as an argument) gets etcdctl's
            // hint rather than "Unknown argument".
            .strict(false)
            .strictOptions()
            .positional('name', { type: 'string', describe: "the new member's name (required)" })
            .option('peer-urls', {
              type: 'string',
              requiresArg: true,
              describe: "the new member's peer URL, http://HOST:PORT (exactly one)",
            })
            .option('learner', {
              type: 'boolean',
              default: false,
              describe: 'add it as a learner: it receives the log but does not vote until promoted',
            }),
        (argv) =>
          ctx.run(() => memberAddCommand(ctx, { ...argv, name: argv.name, extra: argv._.slice(2).map(String) })),
      )
      .command(
        'remove [id]',
        'Remove a member (hex id) from the cluster',
        (c) => c.positional('id', idPositional),
        (argv) => ctx.run(() => memberRemoveCommand(ctx, argv)),
      )
      .command(
        'promote [id]',
        'Promote a learner (hex id) to a voting member, once it has caught up with the leader',
        (c) => c.positional('id', idPositional),
        (argv) => ctx.run(() => memberPromoteCommand(ctx, argv)),
      )
      .demandCommand(1, "keel member needs a subcommand: 'list', 'add', 'remove' or 'promote'"),
  );
}
