// HTTP on port 80, served by Node's own http module over the stack's TCP: the http.Server
// never listens itself; every stack connection is handed to it with emit('connection').
//
//   GET /           the live page (src/teach/page-routes.ts: also its scripts, /events,
//                   /trace.jsonl), with the stack's counters
//   GET /bytes/N    N bytes, byte i being i mod 251, streamed (any N, nothing buffered)
//   POST /sha256    the lowercase hex SHA-256 of the request body
//   GET /stats      the counters as JSON (stack.counters()), plus the process's memory use
//   GET /connections every TCP connection with its tcp_info as JSON (stack.connections(), like ss -tni)
//   GET /PATH       JSON that an owner of the stack added with addJsonRoute (a fleet's /fleet)
//   anything else   404 (405 for a known path with another method)

import { createHash } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Stack, StackModule } from '../stack.ts';
import { closePage, markWorkload, servePage } from '../teach/page-routes.ts';
import { LayerCounters } from '../util/counters.ts';
import { type HttpServiceOptions, registerService } from './index.ts';

export const HTTP_PORT = 80;

/** The /bytes pattern's period: byte i is i mod 251 (a prime, so it never lines up with sizes). */
const BYTES_PERIOD = 251;
/** 256 periods (64,256 bytes): every chunk but the last is the whole block, starting at byte 0. */
const BYTES_BLOCK = patternBytes(BYTES_PERIOD * 256);

/** Bytes 0..length-1 of the /bytes/N pattern. */
export function patternBytes(length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = i % BYTES_PERIOD;
  return b;
}

/** JSON routes added to a stack's HTTP service by what owns the stack (a fleet: /fleet). */
const jsonRoutes = new WeakMap<Stack, Map<string, (query: URLSearchParams) => unknown>>();

/** Serves GET `path` on the stack's HTTP service as the JSON of get(query); returns a remover. */
export function addJsonRoute(stack: Stack, path: string, get: (query: URLSearchParams) => unknown): () => void {
  let routes = jsonRoutes.get(stack);
  if (routes === undefined) jsonRoutes.set(stack, (routes = new Map()));
  routes.set(path, get);
  return () => void routes.delete(path);
}

/** Counters plus the memory the process holds, so a flood's effect can be read remotely. */
export function statsSnapshot(stack: Stack): Record<string, unknown> {
  const memory = process.memoryUsage();
  return { ...stack.counters(), process: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed } };
}

function reply(res: http.ServerResponse, status: number, type: string, body: string, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** Streams the first n pattern bytes, writing only while the response accepts more. */
function sendPatternBytes(res: http.ServerResponse, n: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  let sent = 0;
  const pump = (): void => {
    while (sent < n) {
      if (res.destroyed) return;
      const length = Math.min(BYTES_BLOCK.length, n - sent);
      sent += length;
      if (!res.write(length === BYTES_BLOCK.length ? BYTES_BLOCK : BYTES_BLOCK.subarray(0, length))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

/** The request handler, separate from the transport so it can be driven by any Duplex. */
export function httpHandler(stack: Stack): http.RequestListener {
  return (req, res) => serve(stack, req, res);
}

function serve(stack: Stack, req: http.IncomingMessage, res: http.ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0]!;
  const method = req.method ?? 'GET';
  const readOnly = method === 'GET' || method === 'HEAD';
  const notAllowed = (allow: string): void => reply(res, 405, 'text/plain', 'method not allowed\n', { allow });

  // The live page: /, its scripts, /events, /trace.jsonl (src/teach/page-routes.ts).
  if (servePage(stack, req, res)) return;
  if (path === '/stats' || path === '/connections') {
    if (!readOnly) return notAllowed('GET, HEAD');
    if (path === '/connections') return reply(res, 200, 'application/json', JSON.stringify({ connections: stack.connections() }) + '\n');
    return reply(res, 200, 'application/json', JSON.stringify(statsSnapshot(stack)) + '\n');
  }
  const route = jsonRoutes.get(stack)?.get(path);
  if (route !== undefined) {
    if (!readOnly) return notAllowed('GET, HEAD');
    const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
    return reply(res, 200, 'application/json', JSON.stringify(route(query)) + '\n');
  }
  const bytes = /^\/bytes\/(\d{1,15})$/.exec(path);
  if (bytes) {
    if (!readOnly) return notAllowed('GET, HEAD');
    const n = Number(bytes[1]);
    if (method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      return void res.end();
    }
    return sendPatternBytes(res, n);
  }
  if (path === '/sha256') {
    if (method !== 'POST') return notAllowed('POST');
    const hash = createHash('sha256');
    req.on('data', (chunk: Buffer) => hash.update(chunk));
    req.on('end', () => reply(res, 200, 'text/plain', hash.digest('hex')));
    return;
  }
  reply(res, 404, 'text/plain', 'not found\n');
}

/** The stack's HTTP service a connection handed to a shared http.Server came in on. */
const serviceOfConnection = new WeakMap<object, HttpServiceUse>();

/**
 * An http.Server that never listens: connections come from the caller. Node starts the
 * checks of headersTimeout and requestTimeout (its connections list and the
 * connectionsCheckingInterval timer) on the server's 'listening' event, so the server is
 * told it listens without a port; without this a client that sends half a request line
 * would hold its connection forever (slowloris). The checks run on real time, not the
 * stack's clock; server.close() stops them. Cut-off and bad clients are counted in
 * `counters`. With stack null the server is shared by many stacks (the HTTP service's, a
 * fleet's): each request is served for, and counted by, the stack its connection came in on.
 */
export function createHttpServer(stack: Stack | null, options: HttpServiceOptions = {}, counters = new LayerCounters()): http.Server {
  const stackOf = (socket: object): Stack | undefined => stack ?? serviceOfConnection.get(socket)?.stack;
  const countersOf = (socket: object): LayerCounters | undefined => (stack !== null ? counters : serviceOfConnection.get(socket)?.counters);
  const headersTimeout = options.headersTimeoutMs ?? 60_000;
  // Node checks every 30 s, so a client is cut off up to 30 s late; with a short headers
  // timeout the check runs four times per timeout, so that it is kept to within a quarter.
  const checkInterval = options.checkIntervalMs ?? Math.max(50, Math.min(30_000, headersTimeout / 4));
  const server = http.createServer(
    {
      headersTimeout,
      requestTimeout: options.requestTimeoutMs ?? 300_000,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5000,
      connectionsCheckingInterval: checkInterval,
    },
    (req, res) => {
      const s = stackOf(req.socket);
      if (s === undefined) return void res.destroy();
      serve(s, req, res);
    },
  );
  server.on('request', (req: http.IncomingMessage) => {
    const c = countersOf(req.socket);
    if (c !== undefined) c.rx++;
  });
  // A client that sends garbage gets a 400, one too slow a 408 (as Node's default does), and
  // is closed; it must not reach 'error'.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    // Bytes that were no (whole) request: a client's, not a browser's unused connection, which
    // sends none and is timed out too (the live page shows the one, not the other).
    if (((socket as { bytesRead?: number }).bytesRead ?? 0) > 0) markWorkload(socket);
    countersOf(socket)?.drop(timeout ? 'http-request-timeout' : `http-bad-request: ${err.code ?? err.message}`);
    const status = timeout ? '408 Request Timeout' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });
  server.emit('listening');
  return server;
}

/**
 * The HTTP service's servers, one per set of timeouts, shared by every stack of the process
 * that runs the service: a fleet of 10,000 devices holds one http.Server (its parser pool,
 * connections list and check timer), not 10,000. Closed when the last stack stops serving.
 */
const sharedServers = new Map<string, SharedHttpServer>();

interface SharedHttpServer {
  readonly key: string;
  readonly server: http.Server;
  users: number;
}

/**
 * One stack's HTTP service: connections to its port 80 go to the shared server, and its
 * requests are counted here. One small object per stack, its own handler, StackModule and
 * stop (no closures: a fleet has thousands).
 */
class HttpServiceUse implements StackModule {
  readonly counters = new LayerCounters();
  private released = false;

  constructor(
    readonly stack: Stack,
    private readonly shared: SharedHttpServer,
  ) {
    shared.users++;
  }

  /** A connection to port 80: handed to the shared http.Server, noting whose it is. */
  onConnection(socket: Duplex): void {
    serviceOfConnection.set(socket, this);
    this.shared.server.emit('connection', socket);
  }

  /** StackModule (the stack closes): gives the shared server up; the last user closes it. */
  close(): void {
    if (this.released) return;
    this.released = true;
    const shared = this.shared;
    if (--shared.users > 0) return;
    shared.server.close();
    if (sharedServers.get(shared.key) === shared) sharedServers.delete(shared.key);
  }

  /** The service stops (ServiceSet.stop): the server, the page's sessions, the module entry. */
  stop(): void {
    this.close();
    closePage(this.stack);
    if (this.stack.modules.get('http') === this) this.stack.modules.delete('http');
  }
}

function useSharedServer(stack: Stack, options: HttpServiceOptions | undefined): HttpServiceUse {
  const key = JSON.stringify(options ?? {});
  let shared = sharedServers.get(key);
  if (shared === undefined) sharedServers.set(key, (shared = { key, server: createHttpServer(null, options), users: 0 }));
  return new HttpServiceUse(stack, shared);
}

registerService('http', (stack, options, services) => {
  const use = useSharedServer(stack, options.http);
  try {
    services.tcp(HTTP_PORT, use);
  } catch (err) {
    use.close();
    throw err;
  }
  stack.modules.set('http', use);
  services.onStop(use);
});

/** @internal How many shared HTTP servers the process holds (tests: a fleet holds one). */
export function sharedHttpServerCount(): number {
  return sharedServers.size;
}
