// The download of `keel snapshot save`: which member to ask, and writing its backup to FILE safely. The bytes go
// to FILE.part as they arrive (nothing is held in memory) while BackupVerifier checks the header, the length
// and the sha256; only a complete, intact and fsynced download is renamed to FILE. Anything else removes
// FILE.part and leaves FILE as it was (absent, or an older backup).

import { promises as fsp } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { KeelHttpClient } from '../client/http-client';
import { errorFromResponse } from '../client/http-transport';
import { fsyncDir, writeFully } from '../raft/wal/durable-fs';
import { BackupFormatError, BackupVerifier, type BackupHeader } from '../server/backup-file';
import { SNAPSHOT_PATH } from '../server/maintenance-snapshot';
import { errorMessage } from './format';

/** The largest error answer read from a member (a JSON error is a few hundred bytes). */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * The member to back up from: the first healthy one of `endpoints` (in order). If none is healthy but one
 * answered, the first that answered, with a warning: a member that lost its quorum still holds the data, and
 * backing it up is the first step of a disaster recovery (etcd serves snapshots without a leader too).
 */
export async function pickSnapshotEndpoint(
  endpoints: string[],
  timeoutMs: number,
  warn: (line: string) => void,
): Promise<string> {
  const client = new KeelHttpClient({ endpoints, requestTimeoutMs: timeoutMs });
  const problems: string[] = [];
  let unhealthy: { endpoint: string; reason: string } | undefined;
  try {
    for (const endpoint of endpoints) {
      try {
        const h = await client.health(endpoint);
        if (h.health) return endpoint;
        unhealthy ??= { endpoint, reason: h.reason || 'unhealthy' };
        problems.push(`${endpoint}: ${h.reason || 'unhealthy'}`);
      } catch (e) {
        problems.push(`${endpoint}: ${errorMessage(e)}`);
      }
    }
  } finally {
    await client.close().catch(() => {});
  }
  if (unhealthy !== undefined) {
    warn(`Warning: no endpoint is healthy; saving the snapshot of ${unhealthy.endpoint} (${unhealthy.reason}), which may be stale`);
    return unhealthy.endpoint;
  }
  throw new Error(`no member reachable to take a snapshot from: ${problems.join('; ')}`);
}

export interface DownloadResult {
  endpoint: string;
  header: BackupHeader;
  /** Bytes written to the file. */
  bytes: number;
}

/**
 * Downloads a backup from `endpoint` into `file`. `idleTimeoutMs` bounds the wait for each piece of the
 * answer, not the whole download, so that a large store can take as long as it needs while a member that
 * stops sending is given up on.
 */
export async function downloadSnapshot(endpoint: string, file: string, idleTimeoutMs: number): Promise<DownloadResult> {
  const part = `${file}.part`;
  const { res, timedOut } = await request(endpoint, idleTimeoutMs);
  if (res.statusCode !== 200) {
    const text = await readText(res);
    throw new Error(`snapshot from ${endpoint} refused: ${errorFromResponse(res.statusCode ?? 0, text).message}`);
  }
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(part, 'w', 0o600);
  } catch (e) {
    res.destroy();
    throw new Error(`cannot create ${part}: ${errorMessage(e)}`);
  }
  const verifier = new BackupVerifier();
  let header: BackupHeader;
  try {
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        verifier.push(chunk);
        await writeFully(fh, chunk, verifier.bytes - chunk.length);
      }
    } catch (e) {
      if (e instanceof BackupFormatError) throw e;
      throw new Error(`the download from ${endpoint} broke off after ${verifier.bytes} bytes: ${timedOut() ?? describeCut(e)}`);
    }
    header = verifier.finish();
    await fh.datasync();
  } catch (e) {
    res.destroy();
    await fh.close().catch(() => {});
    await fsp.rm(part, { force: true });
    if (e instanceof BackupFormatError) {
      throw new Error(`the snapshot from ${endpoint} is not intact: ${e.message}; ${file} was not written`);
    }
    throw new Error(`${errorMessage(e)}; ${file} was not written`);
  }
  await fh.close();
  await fsp.rename(part, file);
  await fsyncDir(path.dirname(path.resolve(file)));
  return { endpoint, header, bytes: verifier.bytes };
}

/** POSTs the (empty) SnapshotRequest and resolves with the answer's head; `timedOut` says whether the idle
 *  timeout is what ended the exchange (Node then reports the response only as "aborted"). */
function request(
  endpoint: string,
  idleTimeoutMs: number,
): Promise<{ res: http.IncomingMessage; timedOut: () => string | undefined }> {
  const body = '{}';
  let timeout: string | undefined;
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(SNAPSHOT_PATH, endpoint), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    });
    // An idle socket: nothing sent or received for that long, before or during the answer.
    req.setTimeout(idleTimeoutMs, () => {
      timeout = `${endpoint} sent nothing for ${idleTimeoutMs} ms (--command-timeout)`;
      req.destroy(new Error(timeout));
    });
    req.once('response', (res) => resolve({ res, timedOut: () => timeout }));
    req.once('error', (e) => reject(new Error(`snapshot request to ${endpoint} failed: ${timeout ?? describeCut(e)}`)));
    req.end(body);
  });
}

async function readText(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ERROR_BODY) {
      res.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The message of a socket failure; Node says "aborted" for a response whose connection closed early. */
function describeCut(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const msg = errorMessage(e);
  if (msg === 'aborted' || code === 'ECONNRESET') return 'the member closed the connection';
  return code !== undefined && !msg.includes(code) ? `${msg} (${code})` : msg;
}
