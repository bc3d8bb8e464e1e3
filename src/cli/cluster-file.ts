// D/cluster.json of a local cluster (`keel cluster up`): the members' names, pids, URLs and data dirs.
//   {"members":[{"name","pid","clientUrl","peerUrl","dataDir"}], "endpoints":"url,url,..."}
// A member that is not running has "pid": null.

import fs from 'node:fs';
import path from 'node:path';
import { normalizeUrl } from '../server/options';
import { errorMessage } from './format';

export const CLUSTER_FILE_NAME = 'cluster.json';

export interface ClusterMember {
  name: string;
  /** null when the member is not running (as far as the CLI knows). */
  pid: number | null;
  clientUrl: string;
  peerUrl: string;
  /** Absolute. */
  dataDir: string;
}

export interface ClusterFile {
  members: ClusterMember[];
  /** The members' client URLs, comma-separated (for --endpoints / KEEL_ENDPOINTS). */
  endpoints: string;
}

export class ClusterFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterFileError';
  }
}

export function clusterFilePath(dir: string): string {
  return path.join(path.resolve(dir), CLUSTER_FILE_NAME);
}

export function makeClusterFile(members: ClusterMember[]): ClusterFile {
  return { members, endpoints: members.map((m) => m.clientUrl).join(',') };
}

const NAME_RE = /^[A-Za-z0-9._-]+$/;

/** Checks the shape of a parsed cluster.json; the errors name the file and the field. */
export function validateClusterFile(json: unknown, file: string): ClusterFile {
  const bad = (what: string): ClusterFileError =>
    new ClusterFileError(`${file} is corrupt: ${what} (fix it, or stop the members and remove the file)`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('expected a JSON object');
  const o = json as Record<string, unknown>;
  if (!Array.isArray(o.members)) throw bad('"members" must be an array');
  if (o.members.length === 0) throw bad('"members" is empty');
  const members: ClusterMember[] = [];
  const seen = new Set<string>();
  o.members.forEach((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`members[${i}] must be an object`);
    const m = raw as Record<string, unknown>;
    if (typeof m.name !== 'string' || !NAME_RE.test(m.name)) throw bad(`members[${i}].name must be a name like "n1"`);
    if (seen.has(m.name)) throw bad(`member name "${m.name}" appears twice`);
    seen.add(m.name);
    const pid = m.pid === undefined ? null : m.pid;
    if (pid !== null && !(typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0)) {
      throw bad(`members[${i}].pid must be a positive integer or null`);
    }
    const url = (field: 'clientUrl' | 'peerUrl'): string => {
      const v = m[field];
      if (typeof v !== 'string') throw bad(`members[${i}].${field} must be a string`);
      try {
        return normalizeUrl(v, `members[${i}].${field}`);
      } catch (e) {
        throw bad(errorMessage(e));
      }
    };
    const clientUrl = url('clientUrl');
    const peerUrl = url('peerUrl');
    if (typeof m.dataDir !== 'string' || m.dataDir === '')
      throw bad(`members[${i}].dataDir must be a non-empty string`);
    members.push({ name: m.name, pid, clientUrl, peerUrl, dataDir: path.resolve(path.dirname(file), m.dataDir) });
  });
  if (typeof o.endpoints !== 'string') throw bad('"endpoints" must be a string');
  return makeClusterFile(members);
}

/** Reads D/cluster.json; a missing directory or file, or a corrupt file, is a ClusterFileError. */
export function readClusterFile(dir: string): ClusterFile {
  const abs = path.resolve(dir);
  const file = path.join(abs, CLUSTER_FILE_NAME);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      if (!fs.existsSync(abs)) throw new ClusterFileError(`cluster directory ${abs} does not exist`);
      throw new ClusterFileError(
        `no ${CLUSTER_FILE_NAME} in ${abs} (start a cluster there with: keel cluster up --dir ${dir})`,
      );
    }
    throw new ClusterFileError(`cannot read ${file}: ${errorMessage(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch (e) {
    throw new ClusterFileError(
      `${file} is corrupt: not valid JSON (${errorMessage(e)}) (fix it, or stop the members and remove the file)`,
    );
  }
  return validateClusterFile(json, file);
}

/** Writes D/cluster.json atomically (a temporary file, fsync, rename). */
export function writeClusterFile(dir: string, members: ClusterMember[]): ClusterFile {
  const abs = path.resolve(dir);
  const file = path.join(abs, CLUSTER_FILE_NAME);
  const tmp = `${file}.tmp-${process.pid}`;
  const cf = makeClusterFile(members);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(cf, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return cf;
}

/** Sets the pids of some members (by name) in D/cluster.json, re-reading it first so that a concurrent
 *  change to other members is kept; a member's pid is changed only if it still holds `expect` (when given). */
export function updatePids(
  dir: string,
  changes: { name: string; pid: number | null; expect?: number | null }[],
): ClusterFile {
  const cf = readClusterFile(dir);
  const members = cf.members.map((m) => {
    const c = changes.find((x) => x.name === m.name);
    if (c === undefined) return m;
    if (c.expect !== undefined && m.pid !== c.expect) return m;
    return { ...m, pid: c.pid };
  });
  return writeClusterFile(dir, members);
}
