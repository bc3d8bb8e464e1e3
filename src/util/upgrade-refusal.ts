// Answers an HTTP upgrade request that is refused, on the raw socket the 'upgrade' event hands over (no
// ServerResponse exists there): a plain-text body, extra headers, then the socket is closed.

import http from 'node:http';
import type { Duplex } from 'node:stream';

export function refuseUpgrade(socket: Duplex, status: number, text: string, headers: string[] = []): void {
  const body = `${text}\n`;
  const head = [
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...headers,
  ].join('\r\n');
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`${head}\r\n\r\n${body}`, () => socket.destroy());
}

/** An optional positive setting: its value, or the fallback when absent; a RangeError naming it otherwise. */
export function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${value}`);
  return value;
}
