// The live page without a browser: its model (src/teach/page/model.js, the same file the
// browser runs), and its server side over Node's http through in-memory streams: the routes,
// the SSE stream's batching, its bounds (clients, a slow page, the ring) and the tracer's
// lifetime, with a scripted record source instead of a stack's tracer.
import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLinkPair } from '../../src/link/memory.ts';
import '../../src/services/all.ts';
import { createHttpServer } from '../../src/services/http.ts';
import { type ServiceName, startServices } from '../../src/services/index.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { PageLive, RecordRing, type RecordSource } from '../../src/teach/page-live.ts';
import { setPageLive } from '../../src/teach/page-routes.ts';
import { type ConnectionRow, connectionsFromRecords, connectionTable, lastTransition, parseJsonLines, RecordStore, recordConn } from '../../src/teach/page/model.js';
import { lineFilter as traceFilter } from '../../src/trace/filter.js';
import { formatRecord as recordLine } from '../../src/trace/format-text.js';
import type { FrameRecord, TraceRecord } from '../../src/trace/schema.ts';
import { TRACE_RECORD_TYPES } from '../../src/trace/schema.ts';
import { RealClock } from '../../src/util/clock.ts';
import { duplexPair } from '../helpers/duplex-pair.ts';
import { lossyTransfer } from '../helpers/trace-records.ts';

/** A download from port 80 as its sender traced it, segments 6, 13, 20... lost once. */
function lossyDownload(segments: number, lossEvery: number): TraceRecord[] {
  const lost = Array.from({ length: segments }, (_, i) => i).filter((i) => i % lossEvery === lossEvery - 1);
  return lossyTransfer({ segments, lost, serverPort: 80 }).client;
}
const CONN = lossyTransfer({ segments: 1, serverPort: 80 }).conn;
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until check() holds, up to a second. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await tick(10);
  assert.ok(check(), what);
}

test('model: the table derived from a lossy download, its state and transition', () => {
  const t = lossyTransfer({ segments: 40, lost: [6, 13, 20, 27, 34], serverPort: 80 });
  const records = t.client;
  const rows = connectionsFromRecords(records);
  assert.equal([...rows.keys()], [CONN]);
  const row = rows.get(CONN);
  assert.ok(row);
  const states = records.filter((r) => r.type === 'state');
  const final = states.at(-1) as { from: string; to: string };
  assert.is(row.state, final.to);
  assert.is(row.retrans, 5);
  assert.is(row.bytesSent, t.dataSegmentsSent * 1448);
  assert.ok(row.cwnd !== null && row.ssthresh !== null && row.rttUs !== null);
  assert.equal(lastTransition(records, CONN), { current: final.to, last: { from: final.from, to: final.to } });
  // The stack's own table, in tcp_info's names and units, goes over the derived row.
  const [merged] = connectionTable(rows, [{ conn: '10.0.0.2:80>0.0.0.0:0', state: 'LISTEN', info: {} }, { conn: CONN, state: 'ESTABLISHED', receiveQueue: 3, sendQueue: 4000, info: { tcpi_snd_mss: 1000, tcpi_snd_cwnd: 7, tcpi_snd_ssthresh: 0x7fffffff, tcpi_rtt: 1500, tcpi_total_retrans: 9 } }]);
  assert.ok(merged);
  assert.is(merged.live, true);
  assert.is(merged.state, 'ESTABLISHED');
  assert.is(merged.cwnd, 7000);
  assert.is(merged.ssthresh, null);
  assert.is(merged.rttUs, 1500);
  assert.is(merged.retrans, 9);
  assert.equal([merged.recvQ, merged.sendQ], [3, 4000]);
});

test('model: every record type has a line; the filter takes protocols, ports, hosts, not, words', () => {
  const records = lossyDownload(10, 3);
  const extra: TraceRecord[] = [
    { type: 'arp', t: 9, event: 'resolved', ip: '10.0.0.1', mac: '02:00:00:00:00:01', queued: 1 },
    { type: 'probe', t: 9, conn: CONN, kind: 'zero-window', count: 2 },
    { type: 'icmp-error', t: 9, dir: 'in', kind: 'destination unreachable', code: 3, codeName: 'port unreachable', about: 'udp 10.0.0.2.5000 > 10.0.0.1.9' },
    { type: 'drop', t: 9, layer: 'ipv4', reason: 'bad-checksum' },
  ];
  const all = [...records, ...extra];
  assert.equal(new Set(all.map((r) => r.type)), new Set(TRACE_RECORD_TYPES));
  for (const r of all) assert.ok(recordLine(r).length > 10 && !recordLine(r).includes('undefined'), recordLine(r));
  assert.match(recordLine(extra[1]!), /zero-window probe \(RFC 9293 3\.8\.6\.1\) #2/);
  const count = (filter: string): number => all.filter((r) => traceFilter(filter)(r, recordLine(r))).length;
  assert.is(count(''), all.length);
  assert.is(count('arp'), 2); // the meta line (every filter keeps it, as tapstack show does) and the ARP event
  assert.is(count('not tcp'), 4); // meta, arp, icmp-error, drop
  assert.is(count('tcp port 80'), all.filter((r) => recordConn(r) !== null).length + 1); // and the meta line
  assert.is(count('port 81'), 1); // the meta line only
  // What does not parse as a filter is a search: words that must all be in the line.
  assert.ok(count('retransmit') >= all.filter((r) => r.type === 'retransmit').length);
  assert.is(count('RETRANSMIT'), count('retransmit'));
  assert.is(count('retransmit rack'), all.filter((r) => /retransmit/i.test(recordLine(r)) && /rack/i.test(recordLine(r))).length);
  assert.is(count('host 10.0.0.1 and tcp'), count('tcp'));
  assert.is(count('host 10.0.0.9'), 1); // meta only: it has no address of its own
  // A frame no connection took is named from the stack's side all the same.
  const first = records.find((r) => r.type === 'frame' && r.dir === 'out') as FrameRecord;
  const stray: TraceRecord = { ...first, dir: 'in', src: first.dst, dst: first.src, tcp: { ...first.tcp!, sport: first.tcp!.dport, dport: first.tcp!.sport, conn: null } };
  assert.is(recordConn(stray), CONN);
});

test('model: a saved trace read back skips bad lines; the store keeps the last records', () => {
  const records = lossyDownload(5, 2);
  const text = records.map((r) => JSON.stringify(r)).join('\n') + '\n\n{"type":"frame"\nnot json\n';
  const parsed = parseJsonLines(text);
  assert.equal(parsed.records, records);
  assert.is(parsed.bad, 2);
  const store = new RecordStore(100);
  for (let i = 0; i < 30; i++) store.push(records);
  assert.ok(store.records.length <= 125 && store.records.length >= 100);
  assert.is(store.end, 30 * records.length);
  assert.is(store.records.at(-1), records.at(-1));
});

test('the ring keeps the last records, numbered for good; forget() blanks a connection', () => {
  const ring = new RecordRing(4);
  for (let i = 0; i < 6; i++) ring.push(`r${i}`, i % 2 ? 'a' : 'b');
  assert.is(ring.start, 2);
  assert.is(ring.end, 6);
  assert.equal([2, 3, 4, 5].map((s) => ring.line(s)), ['r2', 'r3', 'r4', 'r5']);
  ring.forget('a');
  assert.equal([2, 3, 4, 5].map((s) => ring.line(s)), ['r2', '', 'r4', '']);
});

// ---- the server side, over Node's http through in-memory streams ----

// A stack for the service's handler to ask (its counters, its name): nothing on its link.
let stack: Stack;
test.before(async () => void (stack = await createStack({ link: createLinkPair(new RealClock())[0], ip: '10.0.0.2/24' })));
test.after(() => stack.close());

/** A record source the test drives: `emit` delivers while attached; counts attach/detach. */
function scriptedSource(): { source: RecordSource; emit(records: TraceRecord[]): void; attached: number; detached: number; active: boolean } {
  const s = {
    attached: 0,
    detached: 0,
    active: false,
    sink: null as ((r: TraceRecord) => void) | null,
    source: ((onRecord) => {
      s.attached++;
      s.active = true;
      s.sink = onRecord;
      return () => {
        s.detached++;
        s.active = false;
        s.sink = null;
      };
    }) as RecordSource,
    emit(records: TraceRecord[]) {
      for (const r of records) s.sink?.(r);
    },
  };
  return s;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  res: http.IncomingMessage;
}

/** A request over a fresh in-memory connection; resolves at the response's head, body growing. */
function open(path: string, method = 'GET', hwm = 16 * 1024): Promise<Reply> {
  const server = createHttpServer(stack);
  const [clientEnd, serverEnd] = duplexPair(hwm);
  server.emit('connection', serverEnd);
  return new Promise((resolve, reject) => {
    const req = http.request({ method, path, host: '10.0.0.2', createConnection: () => clientEnd }, (res) => {
      const reply: Reply = { status: res.statusCode!, headers: res.headers, body: '', res };
      res.setEncoding('utf8');
      res.on('data', (c: string) => (reply.body += c));
      resolve(reply);
    });
    req.on('error', reject);
    req.end();
  });
}

async function complete(path: string, method = 'GET'): Promise<Reply> {
  const r = await open(path, method);
  await new Promise((resolve) => (r.res.complete ? resolve(null) : r.res.on('end', resolve)));
  return r;
}

/** The record batches in an SSE body so far (complete messages: those ended by a blank line). */
function batches(body: string): TraceRecord[][] {
  return body
    .split('\n\n')
    .slice(0, -1)
    .filter((m) => m.includes('event: records'))
    .map((m) => JSON.parse(/^data: (.*)$/m.exec(m)![1]!) as TraceRecord[]);
}

test('GET / is the page: the counters, the scripts it loads are served, a POST is 405', async () => {
  const page = await complete('/');
  assert.is(page.status, 200);
  assert.match(String(page.headers['content-type']), /text\/html/);
  for (const layer of Object.keys(stack.counters())) assert.ok(page.body.includes(`<td>${layer}</td>`), layer);
  assert.match(page.body, /<script type="module" src="\/teach\/page\/page.js">/);
  for (const path of ['/teach/page/page.js', '/teach/page/model.js', '/teach/charts.js', '/trace/format-text.js', '/trace/filter.js']) {
    const js = await complete(path);
    assert.is(js.status, 200, path);
    assert.match(String(js.headers['content-type']), /javascript/);
    assert.match(js.body, /^\/\/ @ts-check/);
  }
  assert.is((await complete('/teach/page/../../stack.ts')).status, 404);
  // The one-file page: page.js inline, its imports data: URLs, nothing loaded from the stack.
  const one = await complete('/page.html');
  assert.is(one.status, 200);
  assert.not.match(one.body, /src="\/teach|from '\.\.?\/|<td>ethernet<\/td>/);
  assert.is(one.body.match(/from 'data:text\/javascript;charset=utf-8,[^']*'/g)?.length, 4);
  assert.is((await complete('/', 'POST')).status, 405);
});

test('/events: the ring first, then batches; the tracer runs only while a page is open, and a while after', async () => {
  const src = scriptedSource();
  const live = new PageLive(src.source, { lingerMs: 50, flushMs: 20 });
  setPageLive(stack, live);
  assert.is(src.attached, 0, 'no page, no tracer');
  const first = await open('/events');
  assert.is(first.status, 200);
  assert.match(String(first.headers['content-type']), /text\/event-stream/);
  assert.ok(src.active);
  // 2000 records in one turn: a few messages (BATCH_RECORDS each), not 2000.
  const records = Array.from({ length: 7 }, () => lossyDownload(100, 7)).flat().slice(0, 2000);
  assert.is(records.length, 2000);
  src.emit(records);
  await until(() => batches(first.body).flat().length === 2000, 'the first page has every record');
  const got = batches(first.body);
  assert.ok(got.length >= 1 && got.length <= 5, `${got.length} messages`);
  assert.equal(got.flat(), records);
  // A page that opens later gets the ring; then both get new records.
  const second = await open('/events');
  await until(() => batches(second.body).flat().length === 2000, 'the second page has the ring');
  src.emit(records.slice(0, 3));
  await until(() => batches(first.body).flat().length === 2003 && batches(second.body).flat().length === 2003, 'both have the new ones');
  // Both leave: the tracer lingers, then stops.
  first.res.destroy();
  second.res.destroy();
  await tick(10);
  assert.ok(src.active, 'kept for a short while');
  await tick(100);
  assert.not.ok(src.active);
  assert.is(src.detached, 1);
  // The download has what the ring holds.
  const jsonl = await complete('/trace.jsonl');
  assert.is(jsonl.status, 200);
  assert.equal(parseJsonLines(jsonl.body).records, [...records, ...records.slice(0, 3)]);
});

test('/events: at most maxClients pages; a page that stops reading is dropped, memory bounded', async () => {
  const src = scriptedSource();
  const live = new PageLive(src.source, { maxClients: 2, ringSize: 1000, clientHighWater: 16 * 1024, flushMs: 5, lingerMs: 0 });
  setPageLive(stack, live);
  const reader = await open('/events');
  const stalled = await open('/events', 'GET', 1024);
  stalled.res.pause();
  assert.is((await open('/events')).status, 503);
  assert.is(live.clientCount, 2);
  let closed = false;
  stalled.res.on('close', () => (closed = true));
  const one = lossyDownload(100, 7);
  for (let i = 0; i < 30 && !closed; i++) {
    src.emit(one);
    await tick(10);
  }
  assert.ok(closed, 'the stalled page was dropped once it fell off the ring');
  assert.is(live.clientCount, 1);
  await tick(50);
  const seen = batches(reader.body).flat().length;
  assert.ok(seen > 1000, `the reading page kept up: ${seen}`);
  reader.res.destroy();
  await tick(20);
  assert.not.ok(src.active);
});

test('a page that opens after the ring has moved past the meta record still gets it first', async () => {
  const src = scriptedSource();
  const live = new PageLive(src.source, { ringSize: 10, flushMs: 5, lingerMs: 1000 });
  setPageLive(stack, live);
  const first = await open('/events');
  const records = lossyDownload(20, 7);
  assert.is(records[0]!.type, 'meta');
  src.emit(records.slice(0, 30));
  first.res.destroy();
  const later = await open('/events');
  await until(() => batches(later.body).flat().length === 11, 'the meta record and the ring');
  const got = batches(later.body).flat();
  assert.equal(got, [records[0]!, ...records.slice(20, 30)]);
  assert.equal([...live.jsonLines()].map((l) => JSON.parse(l) as TraceRecord), got);
  later.res.destroy();
});

test('exclude(): a page\'s own connection is not traced, and what got in is removed', async () => {
  const src = scriptedSource();
  const live = new PageLive(src.source, { flushMs: 5, lingerMs: 0 });
  setPageLive(stack, live);
  const page = await open('/events');
  const records = lossyDownload(10, 3);
  src.emit(records);
  const socket = new (await import('node:events')).EventEmitter();
  live.exclude(CONN, socket);
  src.emit(records);
  const jsonl = [...live.jsonLines()].map((l) => JSON.parse(l) as TraceRecord);
  assert.ok(jsonl.length > 0);
  assert.ok(jsonl.every((r) => recordConn(r) !== CONN), 'none of its records left');
  assert.ok(jsonl.some((r) => r.type === 'meta'), 'records of no connection stay');
  page.res.destroy();
});

interface TwoStacks {
  client: Stack;
  server: Stack;
  /** GET over a fresh connection of the client stack's TCP to the server's port 80. */
  get(path: string): Promise<http.IncomingMessage>;
  /** The page's SSE stream (GET /events) as it has come so far. */
  events: { res: http.IncomingMessage; body: string };
}

/** Two stacks on an in-memory cable, the server running `services`, a page open on it. */
async function overTwoStacks(services: readonly ServiceName[], body: (t: TwoStacks) => Promise<void>): Promise<void> {
  const clock = new RealClock();
  const [la, lb] = createLinkPair(clock);
  const client = await createStack({ link: la, clock, ip: '10.0.0.1/24' });
  const server = await createStack({ link: lb, clock, ip: '10.0.0.2/24' });
  const stopServices = await startServices(server, services);
  try {
    const get = (path: string): Promise<http.IncomingMessage> =>
      new Promise((resolve, reject) => {
        const req = http.get({ path, host: '10.0.0.2', createConnection: () => client.connect({ host: '10.0.0.2', port: 80 }) as never }, resolve);
        req.on('error', reject);
      });
    const res = await get('/events');
    const events = { res, body: '' };
    res.setEncoding('utf8');
    res.on('data', (c: string) => (events.body += c));
    await body({ client, server, get, events });
    res.destroy();
  } finally {
    await stopServices();
    await client.close();
    await server.close();
  }
}

test('over two stacks: the page\'s SSE stream carries the real tracer\'s records of a download, none of its own', () =>
  overTwoStacks(['http'], async ({ get, events }) => {
    const pageConn = `10.0.0.2:80>10.0.0.1:${(events.res.socket as unknown as { localPort: number }).localPort}`;
    const download = await get('/bytes/200000');
    download.resume();
    await new Promise((r) => download.on('end', r));
    const downloadConn = `10.0.0.2:80>10.0.0.1:${(download.socket as unknown as { localPort: number }).localPort}`;
    await until(() => batches(events.body).flat().some((r) => r.type === 'state' && r.conn === downloadConn && r.from === 'ESTABLISHED'), 'the download\'s close in the stream');
    const records = batches(events.body).flat();
    const frames = records.filter((r) => recordConn(r) === downloadConn && r.type === 'frame').length;
    assert.ok(frames > 5, `${frames} frames of the download`);
    assert.is(records.filter((r) => recordConn(r) === pageConn).length, 0, 'the page\'s own connection is not traced');
  }));

test('ownPort: a connection there is held back until its request; dropped if it ends established with none, let through if it never established', async () => {
  const src = scriptedSource();
  const workload = new Set<string>();
  const live = new PageLive(src.source, { flushMs: 5, lingerMs: 0, ownPort: 80, carriedOtherRequest: (c) => workload.has(c) });
  setPageLive(stack, live);
  const page = await open('/events');
  const state = (conn: string, from: string, to: string): TraceRecord => ({ type: 'state', t: 1, conn, from, to, event: 'e', rfc: 'r' }) as TraceRecord;
  const opened = (conn: string): TraceRecord[] => [state(conn, 'LISTEN', 'SYN-RECEIVED'), state(conn, 'SYN-RECEIVED', 'ESTABLISHED')];
  const [served, spare, scan, other] = ['10.0.0.2:80>10.0.0.1:5001', '10.0.0.2:80>10.0.0.1:5002', '10.0.0.2:80>10.0.0.1:5003', '10.0.0.2:7>10.0.0.1:5004'];
  src.emit([...opened(served), ...opened(spare), state(scan, 'LISTEN', 'SYN-RECEIVED'), state(scan, 'SYN-RECEIVED', 'CLOSED'), ...opened(other)]);
  const kept = (): TraceRecord[] => [...live.jsonLines()].map((l) => JSON.parse(l) as TraceRecord);
  assert.equal(kept().map(recordConn), [scan, scan, other, other], 'the scan let through when it ended; port 7 at once');
  // Its request: its records held back go first, in their order.
  workload.add(served);
  src.emit([state(served, 'ESTABLISHED', 'CLOSE-WAIT')]);
  assert.equal(kept().filter((r) => recordConn(r) === served), [...opened(served), state(served, 'ESTABLISHED', 'CLOSE-WAIT')]);
  // The spare one closes with no request: none of it, then or after.
  src.emit([state(spare, 'ESTABLISHED', 'CLOSE-WAIT'), state(spare, 'LAST-ACK', 'CLOSED'), state(spare, 'CLOSED', 'CLOSED')]);
  assert.is(kept().filter((r) => recordConn(r) === spare).length, 0);
  page.res.destroy();
});

/** The last connection table in an SSE body (stack.connections() as the page is sent it). */
function lastConnections(body: string): { conn: string; state: string }[] | null {
  const m = body.split('\n\n').slice(0, -1).filter((x) => x.includes('event: connections')).at(-1);
  return m === undefined ? null : (JSON.parse(/^data: (.*)$/m.exec(m)![1]!) as { connections: { conn: string; state: string }[] }).connections;
}

test('a connection to the page\'s port that carries no request (a browser\'s spare one) is not in the table, open or closed; one to another port is', () =>
  overTwoStacks(['http', 'echo'], async ({ client, server, get, events }) => {
    const connectTo = (port: number): Promise<ReturnType<Stack['connect']>> =>
      new Promise((resolve, reject) => {
        const s = client.connect({ host: '10.0.0.2', port }, () => resolve(s));
        s.on('error', reject);
      });
    // As Chromium's preconnect: to the page's port, never a byte sent. And the same to port 7.
    const spare = await connectTo(80);
    const other = await connectTo(7);
    const spareConn = `10.0.0.2:80>10.0.0.1:${spare.localPort}`;
    const otherConn = `10.0.0.2:7>10.0.0.1:${other.localPort}`;
    // The stack's workload on the page's port: shown, its handshake with it.
    const download = await get('/bytes/100000');
    download.resume();
    await new Promise((r) => download.on('end', r));
    const downloadConn = `10.0.0.2:80>10.0.0.1:${(download.socket as unknown as { localPort: number }).localPort}`;
    /** The table as the page draws it (model.js: the rows from the records, the stack's table over them). */
    const table = (): ConnectionRow[] => connectionTable(connectionsFromRecords(batches(events.body).flat()), lastConnections(events.body));
    const conns = (): string[] => table().map((r) => r.conn);
    await until(() => lastConnections(events.body)?.some((c) => c.conn === downloadConn) === true && conns().includes(otherConn), 'the download and port 7 in the table');
    assert.ok(server.connections().some((c) => c.conn === spareConn && c.state === 'ESTABLISHED'), 'the spare connection is open');
    assert.not.ok(conns().includes(spareConn), `open: ${conns().join(', ')}`);
    assert.ok(batches(events.body).flat().some((r) => r.type === 'state' && r.conn === downloadConn && r.to === 'ESTABLISHED'), 'the download\'s handshake, held back until its request, is in the stream');
    // Both closed by the client: the spare one must not come back as a CLOSED row (the CI run's flake).
    spare.destroy();
    other.destroy();
    const closed = (conn: string): boolean => !server.connections().some((c) => c.conn === conn && c.state !== 'TIME-WAIT');
    await until(() => closed(spareConn) && closed(otherConn), 'both closed on the server');
    const seen = events.body.length;
    await until(() => lastConnections(events.body.slice(seen)) !== null, 'a table sent after they closed');
    const rows = table();
    assert.is(rows.find((r) => r.conn === otherConn)?.state, 'CLOSED', 'port 7\'s connection stays, closed');
    assert.not.ok(rows.some((r) => r.conn === spareConn), `closed: ${rows.map((r) => `${r.conn} ${r.state}`).join(', ')}`);
    assert.is(batches(events.body).flat().filter((r) => recordConn(r) === spareConn).length, 0, 'none of its records sent');
  }));

test.run();
