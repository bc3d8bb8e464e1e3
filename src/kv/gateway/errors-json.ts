// Errors and stream framing as etcd's gateway (grpc-gateway v1) writes them.
//
// - A unary call that fails answers {"error": msg, "code": grpcCode, "message": msg} with the HTTP status
//   grpc-gateway maps the gRPC code to.
// - A streaming call (watch, lease keep-alive) answers newline-separated chunks: {"result": <message>} for
//   each message, and {"error": {"grpc_code", "http_code", "message", "http_status"}} when the stream fails
//   (the HTTP status is set from the code only if nothing was written before).

import { GrpcCode, KvError } from '../api';

/** The gateway's error body of a unary call. */
export interface ErrorJson {
  error: string;
  code: number;
  message: string;
}

/** grpc-gateway v1's StreamError, the body of an {"error": ...} chunk. */
export interface StreamErrorJson {
  grpc_code: number;
  http_code: number;
  message: string;
  http_status: string;
}

export function errorToJson(code: GrpcCode, message: string): ErrorJson {
  // grpc-gateway v1's field order.
  return { error: message, code, message };
}

/** Go's http.StatusText for the statuses httpStatusFromCode gives. */
const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function streamErrorToJson(code: GrpcCode, message: string): { error: StreamErrorJson } {
  const http = httpStatusFromCode(code);
  return { error: { grpc_code: code, http_code: http, message, http_status: STATUS_TEXT[http] ?? '' } };
}

/** One chunk of a streaming answer, newline included. */
export function streamLine(chunk: object): string {
  return JSON.stringify(chunk) + '\n';
}

const GRPC_CODES = new Set<number>([
  GrpcCode.Canceled,
  GrpcCode.Unknown,
  GrpcCode.InvalidArgument,
  GrpcCode.DeadlineExceeded,
  GrpcCode.NotFound,
  GrpcCode.ResourceExhausted,
  GrpcCode.FailedPrecondition,
  GrpcCode.OutOfRange,
  GrpcCode.Unimplemented,
  GrpcCode.Internal,
  GrpcCode.Unavailable,
]);

function knownCode(v: unknown): GrpcCode | undefined {
  return typeof v === 'number' && GRPC_CODES.has(v) ? (v as GrpcCode) : undefined;
}

/** The KvError an error answer stands for: its code and etcd's message when the body is the gateway's
 *  (unary {"error","code","message"} or a stream's {"error": {"grpc_code","message",...}}), otherwise a
 *  code guessed from the HTTP status. */
export function errorFromJson(httpStatus: number, json: unknown): KvError {
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    if (typeof o.error === 'object' && o.error !== null && !Array.isArray(o.error)) {
      const e = o.error as Record<string, unknown>;
      if (typeof e.message === 'string') {
        return new KvError(knownCode(e.grpc_code) ?? codeFromHttpStatus(httpStatus), e.message);
      }
    }
    const message = typeof o.message === 'string' ? o.message : typeof o.error === 'string' ? o.error : undefined;
    if (message !== undefined) return new KvError(knownCode(o.code) ?? codeFromHttpStatus(httpStatus), message);
  }
  return new KvError(codeFromHttpStatus(httpStatus), `HTTP ${httpStatus}`);
}

/** grpc-gateway's mapping of gRPC codes to HTTP statuses (v1, which etcd uses). */
export function httpStatusFromCode(code: GrpcCode): number {
  switch (code) {
    case GrpcCode.OK:
      return 200;
    case GrpcCode.Canceled:
      return 408;
    case GrpcCode.InvalidArgument:
    case GrpcCode.FailedPrecondition:
    case GrpcCode.OutOfRange:
      return 400;
    case GrpcCode.DeadlineExceeded:
      return 504;
    case GrpcCode.NotFound:
      return 404;
    case GrpcCode.ResourceExhausted:
      // etcd's "database space exceeded" (a NOSPACE alarm is raised).
      return 429;
    case GrpcCode.Unimplemented:
      return 501;
    case GrpcCode.Unavailable:
      return 503;
    case GrpcCode.Unknown:
    case GrpcCode.Internal:
    default:
      return 500;
  }
}

export function codeFromHttpStatus(status: number): GrpcCode {
  switch (status) {
    case 400:
    case 413:
      return GrpcCode.InvalidArgument;
    case 404:
      return GrpcCode.NotFound;
    case 408:
      return GrpcCode.Canceled;
    case 429:
      return GrpcCode.ResourceExhausted;
    case 501:
      return GrpcCode.Unimplemented;
    case 503:
      return GrpcCode.Unavailable;
    case 504:
      return GrpcCode.DeadlineExceeded;
    default:
      return GrpcCode.Unknown;
  }
}
