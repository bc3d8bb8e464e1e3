// HTTP plumbing shared by the client-facing JSON routes (the gateway here, and routes other modules add
// through createClientServer's extraRoutes): bounded body reading, JSON answers, the gateway's error shape.

import type http from 'node:http';
import { Errors, GrpcCode, KvError, MAX_REQUEST_BYTES } from '../kv/api';
import { errorToJson, httpStatusFromCode, streamErrorToJson, streamLine } from '../kv/gateway-json';

/** A route's handler: it gets the request unread, so that it can stream. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

/**
 * Largest request body read. JSON carries bytes as base64 (4/3 of their size), so a request just over
 * MAX_REQUEST_BYTES still reaches the member, which answers it with etcd's error; the 64 KiB cover field
 * names and the rest of the JSON. Anything larger is refused unread (413).
 */
export const MAX_BODY_BYTES = Math.ceil(MAX_REQUEST_BYTES / 3) * 4 + 64 * 1024;

/** The body was larger than the limit; its HTTP status is 413 and its message etcd's. */
export class BodyTooLargeError extends KvError {
  constructor() {
    super(GrpcCode.InvalidArgument, Errors.tooLarge().message);
    this.name = 'BodyTooLargeError';
  }
}

/** Reads the whole body, refusing (BodyTooLargeError) one over `limit` bytes as soon as that is known. */
export function readBody(req: http.IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      // Discard what the client still sends, so it can read our answer instead of a reset connection.
      req.resume();
      reject(new BodyTooLargeError());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        settle(() => reject(new BodyTooLargeError()));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => settle(() => resolve(Buffer.concat(chunks, size))));
    // An aborted request emits 'error' (ECONNRESET) then 'close'; either way the client is gone.
    req.on('error', () => settle(() => reject(new KvError(GrpcCode.Canceled, 'request canceled: connection reset'))));
    req.on('close', () =>
      settle(() => reject(new KvError(GrpcCode.Canceled, 'request canceled: connection closed before the body was complete'))),
    );
  });
}

/** The body as JSON; an empty body is `{}` (grpc-gateway ignores EOF: every field takes its default). */
export function parseJson(body: Buffer | string): unknown {
  const text = (typeof body === 'string' ? body : body.toString('utf8')).trim();
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new KvError(GrpcCode.InvalidArgument, `invalid JSON body: ${(err as Error).message}`);
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/** The gateway's error answer: {"error": msg, "code": grpcCode, "message": msg}. */
export function sendError(res: http.ServerResponse, httpStatus: number, code: GrpcCode, message: string): void {
  sendJson(res, httpStatus, errorToJson(code, message));
}

/** A KvError as the gateway maps it (code -> HTTP status); BodyTooLargeError is 413. */
export function sendKvError(res: http.ServerResponse, err: KvError): void {
  const status = err instanceof BodyTooLargeError ? 413 : httpStatusFromCode(err.code);
  if (err instanceof BodyTooLargeError) res.setHeader('Connection', 'close');
  sendError(res, status, err.code, err.message);
}

/**
 * Ends a streaming answer with grpc-gateway's error chunk, {"error": {"grpc_code", "http_code", "message",
 * "http_status"}}: with the HTTP status of the code when nothing was written yet, else after the chunks
 * already sent (the status is then 200, as in etcd).
 */
export function endStreamWithError(res: http.ServerResponse, err: unknown): void {
  if (res.destroyed || res.writableEnded) return;
  const kv =
    err instanceof KvError ? err : new KvError(GrpcCode.Unknown, err instanceof Error ? err.message : String(err));
  if (!res.headersSent) {
    res.statusCode = err instanceof BodyTooLargeError ? 413 : httpStatusFromCode(kv.code);
    res.setHeader('Content-Type', 'application/json');
  }
  res.end(streamLine(streamErrorToJson(kv.code, kv.message)));
}
