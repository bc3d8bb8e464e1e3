// Binding a member's listener to its URL, with errors that name the URL and what is wrong (port in use,
// address not here), shared by the peer listener and the client listener (gRPC mux).

import type net from 'node:net';

/** Listens on URL's host:port; `what` names the listener in errors ("peer", "client"). */
export function listenOn(server: net.Server, url: string, what: string): Promise<void> {
  const u = new URL(url);
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE') reject(new Error(`${what} URL ${url}: port ${u.port} is already in use`));
      else if (err.code === 'EADDRNOTAVAIL') reject(new Error(`${what} URL ${url}: address not available here`));
      else reject(new Error(`${what} URL ${url}: cannot listen: ${err.message}`));
    };
    server.once('error', onError);
    server.listen(Number(u.port), u.hostname.replace(/^\[|\]$/g, ''), () => {
      server.off('error', onError);
      resolve();
    });
  });
}
