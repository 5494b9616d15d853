// The live page's routes on the HTTP service (src/services/http.ts hands every request here
// first):
//
//   GET /                     the page (page-html.ts), with the counters as they are
//   GET /teach/page/page.js   the page's script, its model, and the charts it shares with
//   GET /teach/page/model.js  `tapstack plot`: plain ES modules served as they are on disk
//   GET /teach/charts.js      (src/teach/ from a checkout, dist/teach/ from the package)
//   GET /events               the live stream: trace records and the connection table (SSE)
//   GET /trace.jsonl          the records the ring holds, as JSON lines (Download trace)
//   GET /page.html            the page in one file, its scripts inside: saved, it opens a
//                             saved trace from file:// with no stack at all (Save page)

import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { parseIpv4 } from '../ipv4/address.ts';
import type { Stack } from '../stack.ts';
import type { ConnId } from '../trace/schema.ts';
import { PAGE_SCRIPT_TAG, pageHtml } from './page-html.ts';
import { PageLive, type RecordSource } from './page-live.ts';

/** The scripts the page loads, by URL path, and their files next to this module. */
const SCRIPTS: Record<string, string> = {
  '/teach/page/page.js': './page/page.js',
  '/teach/page/model.js': './page/model.js',
  '/teach/charts.js': './charts.js',
  '/trace/format-text.js': '../trace/format-text.js',
  '/trace/filter.js': '../trace/filter.js',
};
const scriptCache = new Map<string, string>();

function script(path: string): string {
  let text = scriptCache.get(path);
  if (text === undefined) {
    text = readFileSync(new URL(SCRIPTS[path]!, import.meta.url), 'utf8');
    scriptCache.set(path, text);
  }
  return text;
}

/**
 * The page as one file: the scripts become data: URLs (a page opened from file:// may not load
 * modules from files, but it may import data: URLs), page.js's imports rewritten to them, and
 * page.js itself inline. The modules import nothing else at run time (charts.js, format-text.js and filter.js promise it).
 */
function standalonePage(stack: Stack): string {
  // encodeURIComponent leaves ' as it is: encoded too, the URL sits in a quoted specifier.
  const dataUrl = (path: string): string => `data:text/javascript;charset=utf-8,${encodeURIComponent(script(path)).replaceAll("'", '%27')}`;
  const main = script('/teach/page/page.js')
    .replace(`from '../charts.js'`, () => `from '${dataUrl('/teach/charts.js')}'`)
    .replace(`from './model.js'`, () => `from '${dataUrl('/teach/page/model.js')}'`)
    .replace(`from '../../trace/format-text.js'`, () => `from '${dataUrl('/trace/format-text.js')}'`)
    .replace(`from '../../trace/filter.js'`, () => `from '${dataUrl('/trace/filter.js')}'`)
    .replaceAll('</script', '<\\/script');
  return pageHtml(stack, { counters: false }).replace(PAGE_SCRIPT_TAG, () => `<script type="module">\n${main}\n</script>`);
}

/** The stack's own tracer as the page's record source: records only, no lines written. */
function traceSource(stack: Stack): RecordSource {
  return (onRecord) => {
    const trace = stack.trace({ format: 'json', output: null, onRecord });
    return () => trace.stop();
  };
}

const lives = new WeakMap<Stack, PageLive>();

/**
 * Sockets of the HTTP service that carried a request not for the page (or bytes that were no
 * request): the stack's workload, shown on the page's port (PageLiveOptions.ownPort). Marked
 * whether or not a page is open, so that a download started before the page is shown.
 */
const workloadSockets = new WeakSet<object>();

/** The HTTP service's socket carried something other than a page request. */
export function markWorkload(socket: object): void {
  workloadSockets.add(socket);
}

/** Has the stack's connection `conn` (while the stack holds it) carried something other than a page request? */
function carriedOtherRequest(stack: Stack, conn: ConnId): boolean {
  const m = /^[\d.]+:(\d+)>([\d.]+):(\d+)$/.exec(conn);
  const remoteIp = m ? parseIpv4(m[2]!) : null;
  if (!m || remoteIp === null) return false;
  const user = stack.tcp.find(Number(m[1]), remoteIp, Number(m[3]))?.user;
  return user != null && workloadSockets.has(user);
}

/** The stack's page hub, made on first use; `ownPort` the port the page is served on. */
export function pageLive(stack: Stack, ownPort?: number): PageLive {
  let live = lives.get(stack);
  if (!live) {
    const options = { connections: () => stack.connections(), ownPort, carriedOtherRequest: (conn: ConnId) => carriedOtherRequest(stack, conn) };
    lives.set(stack, (live = new PageLive(traceSource(stack), options)));
  }
  return live;
}

/** Gives the stack a hub of one's own (tests: a scripted record source). */
export function setPageLive(stack: Stack, live: PageLive): void {
  lives.get(stack)?.close();
  lives.set(stack, live);
}

/** Ends the pages and stops their tracer (the HTTP service stops). */
export function closePage(stack: Stack): void {
  lives.get(stack)?.close();
  lives.delete(stack);
}

/** The stack's name of the connection a request came on, when it came over the stack's TCP. */
function requestConn(req: http.IncomingMessage): ConnId | null {
  const s = req.socket;
  if (!s.localAddress || !s.remoteAddress || s.localPort === undefined || s.remotePort === undefined) return null;
  return `${s.localAddress}:${s.localPort}>${s.remoteAddress}:${s.remotePort}`;
}

function send(res: http.ServerResponse, type: string, body: string, head: boolean): void {
  res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache' });
  res.end(head ? undefined : body);
}

/** Writes the ring's lines as the response drains (the ring may hold megabytes). */
function sendJsonLines(res: http.ServerResponse, lines: Iterator<string>): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'content-disposition': 'attachment; filename="tapstack-trace.jsonl"' });
  const pump = (): void => {
    for (;;) {
      if (res.destroyed) return;
      const next = lines.next();
      if (next.done) return void res.end();
      if (!res.write(next.value)) return void res.once('drain', pump);
    }
  };
  pump();
}

/** Every connection that asks for the page's parts is the page's own: not traced. */
function excludeConnection(stack: Stack, req: http.IncomingMessage): PageLive {
  // The port it came to: connections there are the viewer's until they carry another request.
  const live = pageLive(stack, req.socket.localPort);
  const conn = requestConn(req);
  if (conn) live.exclude(conn, req.socket);
  return live;
}

/** Serves the page's routes; false for any other path (the service's own routes). */
export function servePage(stack: Stack, req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const path = (req.url ?? '/').split('?')[0]!;
  const isScript = Object.hasOwn(SCRIPTS, path);
  if (path === '/favicon.ico') {
    // A browser asks for it by itself, on a connection of its own at times: the viewer's
    // request too (the service answers 404).
    excludeConnection(stack, req);
    return false;
  }
  if (path !== '/' && path !== '/events' && path !== '/trace.jsonl' && path !== '/page.html' && !isScript) {
    markWorkload(req.socket);
    return false;
  }
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    // No browser's page asks this: a client's request, the stack's workload.
    markWorkload(req.socket);
    res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' });
    res.end('method not allowed\n');
    return true;
  }
  const head = method === 'HEAD';
  const live = excludeConnection(stack, req);

  if (path === '/') send(res, 'text/html; charset=utf-8', pageHtml(stack), head);
  else if (isScript) send(res, 'text/javascript; charset=utf-8', script(path), head);
  else if (path === '/page.html') send(res, 'text/html; charset=utf-8', standalonePage(stack), head);
  else if (path === '/trace.jsonl') {
    if (head) send(res, 'application/x-ndjson', '', true);
    else sendJsonLines(res, live.jsonLines());
  } else if (head) send(res, 'text/event-stream', '', true);
  else {
    const lastId = Number(req.headers['last-event-id']);
    if (!live.addClient(res, Number.isInteger(lastId) ? lastId + 1 : undefined)) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '10' });
      res.end('too many pages open\n');
    }
  }
  return true;
}
