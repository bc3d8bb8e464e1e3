// The gateway's two streaming routes, as etcd's gateway serves its bidirectional RPCs over HTTP/1.1: the
// request body is a stream of JSON request objects, the answer a stream of newline-terminated
// {"result": ...} chunks, ended by {"error": {...}} if the stream fails.
//
// - POST /v3/watch: {"create_request"|"cancel_request"|"progress_request": ...} objects in, WatchResponses
//   out. The answer stays open after the request body ends (curl -d sends one create and waits), until the
//   client disconnects, which closes the member's WatchStream. Backpressure: the sink returns false once
//   the socket's buffer is over its high-water mark, and the stream is resumed on 'drain'; the watch hub
//   holds what follows, so a client that does not read never makes the server buffer without bound.
// - POST /v3/lease/keepalive: {"ID": ...} objects in, one LeaseKeepAliveResponse per object out, in order;
//   the answer ends when the request body has ended and every keep-alive is answered.
//
// Errors in the first request object (bad JSON, unknown field, bad value) get the unary error answer, as
// etcd's gateway gives them, with nothing reaching the member; later ones end the stream with the error
// chunk.

import type http from 'node:http';
import type { Logger } from 'pino';
import {
  GrpcCode,
  KvError,
  type KvService,
  type LeaseKeepAliveRequest,
  type WatchSink,
  type WatchStream,
} from '../kv/api';
import {
  leaseKeepAliveResponseToJson,
  parseLeaseKeepAliveRequest,
  parseWatchRequest,
  streamLine,
  watchResponseToJson,
} from '../kv/gateway-json';
import { validateLeaseKeepAlive, validateWatchCreate } from '../kv/validate';
import { JsonObjectSplitter } from './json-stream';
import { MAX_BODY_BYTES, endStreamWithError, parseJson, sendKvError, type Handler } from './json';

/** Keep-alives read ahead of their answers before the body is paused. */
const MAX_QUEUED_KEEPALIVES = 16;

/**
 * Reads the objects of a streaming body. `onMessage` gets each one, parsed, in order; `onEnd` runs at the
 * end of the body; `onError` gets a framing or JSON error, after which nothing more is delivered.
 */
function readMessages(
  req: http.IncomingMessage,
  onMessage: (msg: unknown, index: number) => void,
  onEnd: () => void,
  onError: (err: unknown) => void,
): { stop(): void } {
  const splitter = new JsonObjectSplitter(MAX_BODY_BYTES);
  let stopped = false;
  let index = 0;
  const stop = (): void => {
    stopped = true;
    // Drain what the client still sends, so that the connection stays usable for the error answer.
    req.resume();
  };
  req.on('data', (chunk: Buffer) => {
    if (stopped) return;
    try {
      for (const text of splitter.push(chunk)) {
        if (stopped) return;
        onMessage(parseJson(text), index++);
      }
    } catch (err) {
      stop();
      onError(err);
    }
  });
  req.on('end', () => {
    if (stopped) return;
    try {
      splitter.end();
    } catch (err) {
      stop();
      onError(err);
      return;
    }
    onEnd();
  });
  return { stop };
}

function emptyBody(example: string): KvError {
  return new KvError(GrpcCode.InvalidArgument, `empty request body (expected ${example})`);
}

function unexpected(err: unknown): KvError {
  return err instanceof KvError ? err : new KvError(GrpcCode.Unknown, err instanceof Error ? err.message : String(err));
}

export function watchHandler(svc: KvService, log: Logger): Handler {
  return (req, res) => {
    let stream: WatchStream | undefined;
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      stream?.close();
    };
    // The client went away, or the answer was ended here: either way no watch of this stream is needed.
    res.on('close', close);

    const fail = (err: unknown): void => {
      reader.stop();
      if (stream === undefined && !res.headersSent) {
        close();
        if (err instanceof KvError) sendKvError(res, err);
        else endStreamWithError(res, err);
        return;
      }
      log.debug({ err: unexpected(err).message }, 'watch stream ended by an error');
      close();
      endStreamWithError(res, err);
    };

    const sink: WatchSink = (resp) => {
      if (closed || res.destroyed || res.writableEnded) return false;
      let line: string;
      try {
        line = streamLine({ result: watchResponseToJson(resp) });
      } catch (err) {
        log.error({ err }, 'watch: cannot encode a response');
        // Called from the hub: answer it, and end the stream outside of its call.
        const message = `watch: cannot encode a response: ${unexpected(err).message}`;
        queueMicrotask(() => fail(new KvError(GrpcCode.Internal, message)));
        return false;
      }
      return res.write(line);
    };

    const open = (): WatchStream => {
      res.setHeader('Content-Type', 'application/json');
      const s = svc.watch(sink); // may throw (member starting): still a plain error answer
      stream = s;
      if (!res.headersSent) {
        res.writeHead(200);
        // The client learns at once that the stream is open, before the first response.
        res.flushHeaders();
      }
      res.on('drain', () => {
        if (!closed) s.resume();
      });
      return s;
    };

    const reader = readMessages(
      req,
      (msg) => {
        if (closed) return;
        const w = parseWatchRequest(msg);
        if (w.type === 'create') validateWatchCreate(w.create);
        const s = stream ?? open();
        switch (w.type) {
          case 'create':
            s.create(w.create);
            break;
          case 'cancel':
            s.cancel(w.watchId);
            break;
          case 'progress':
            s.requestProgress();
            break;
        }
      },
      () => {
        // The client has sent all its requests; the watches go on until it disconnects.
        if (stream === undefined) fail(emptyBody('{"create_request": {"key": "<base64>"}}'));
      },
      fail,
    );
  };
}

export function leaseKeepAliveHandler(svc: KvService, log: Logger): Handler {
  return (req, res) => {
    let done = false;
    let bodyEnded = false;
    let received = 0;
    let queued = 0;
    let chain: Promise<void> = Promise.resolve();

    res.on('close', () => {
      done = true;
    });

    const flow = (): void => {
      if (done) return;
      if (queued >= MAX_QUEUED_KEEPALIVES || res.writableNeedDrain) req.pause();
      else req.resume();
    };
    res.on('drain', flow);

    const fail = (err: unknown, requestError: boolean): void => {
      if (done) return;
      done = true;
      reader.stop();
      if (requestError && !res.headersSent && err instanceof KvError) {
        sendKvError(res, err);
        return;
      }
      log.debug({ err: unexpected(err).message }, 'lease keep-alive stream ended by an error');
      endStreamWithError(res, err);
    };

    const finish = (): void => {
      if (done || !bodyEnded || queued > 0) return;
      done = true;
      if (received === 0) {
        sendKvError(res, emptyBody('{"ID": "<lease id>"}'));
        return;
      }
      res.end();
    };

    const reader = readMessages(
      req,
      (msg, index) => {
        // Parsed and checked at once (so that the first one's error is a plain error answer); answered in
        // order.
        let request: LeaseKeepAliveRequest;
        try {
          request = parseLeaseKeepAliveRequest(msg);
          validateLeaseKeepAlive(request);
        } catch (err) {
          reader.stop();
          // Answered in order, after the keep-alives before it.
          const first = index === 0;
          chain = chain.then(() => fail(err, first));
          return;
        }
        received++;
        queued++;
        flow();
        chain = chain
          .then(async () => {
            if (done) return;
            const resp = await svc.leaseKeepAlive(request);
            if (done) return;
            if (!res.headersSent) res.writeHead(200, { 'Content-Type': 'application/json' });
            res.write(streamLine({ result: leaseKeepAliveResponseToJson(resp) }));
          })
          .catch((err: unknown) => fail(err, false))
          .finally(() => {
            queued--;
            flow();
            finish();
          });
      },
      () => {
        bodyEnded = true;
        void chain.then(finish);
      },
      (err) => {
        chain = chain.then(() => fail(err, received === 0));
      },
    );
  };
}
