// The live page's server side: a ring of the last trace records and the pages that follow it
// over server-sent events (text/event-stream, the WHATWG HTML "server-sent events" format).
//
// Costs are bounded whatever the pages do:
// - the ring holds the last `ringSize` records as JSON text (a page that opens later gets
//   them first; GET /trace.jsonl downloads them);
// - at most `maxClients` pages at once (the next one gets 503);
// - each page is sent records only while its response holds less than `clientHighWater`
//   bytes not yet taken by TCP (res.writableLength): a page that reads slowly falls behind
//   in the ring instead of growing memory, and one that falls off the ring's start is dropped;
// - the tracer is attached only while a page is connected, and `lingerMs` after the last one
//   leaves (a reload keeps its history): with no page the stack pays nothing;
// - records are sent in batches, every `flushMs`, not one message per frame;
// - the records held back of connections to the page's own port that have carried no request
//   yet (see `ownPort`) are at most MAX_HELD_RECORDS for each of MAX_HELD_CONNS connections.

import type http from 'node:http';
import type { ConnId, TraceRecord } from '../trace/schema.ts';
import { recordConn } from './page/model.js';

/** Starts delivering records; the function returned stops. */
export type RecordSource = (onRecord: (record: TraceRecord) => void) => () => void;

export interface PageLiveOptions {
  ringSize?: number;
  maxClients?: number;
  clientHighWater?: number;
  lingerMs?: number;
  flushMs?: number;
  /** The stack's connection table (stack.connections()), sent every `connectionsMs`. */
  connections?: () => unknown[];
  connectionsMs?: number;
  /**
   * The port the page is served on, which serves the stack's workload too (/bytes, /sha256...).
   * A connection to it is taken for the viewer's own until `carriedOtherRequest` says it has
   * carried a request that is not the page's: a browser opens connections that never carry
   * one (Chromium's preconnects and spare connect jobs, which its socket pool may never use)
   * and the page would show them (a CI run: a CLOSED row of Chromium's). Their records are held
   * back meanwhile, and their rows left out of the table. Unset: no connection is held.
   */
  ownPort?: number;
  /** Has this connection (on `ownPort`) carried a request that is not one of the page's? */
  carriedOtherRequest?: (conn: ConnId) => boolean;
}

/** Records per SSE message: a page parses each message at once. */
const BATCH_RECORDS = 500;
/** Connections to the page's port held back at once; the oldest one is let through past it. */
const MAX_HELD_CONNS = 256;
/** Records held back for one connection (its handshake is 5 or so); past it, let through. */
const MAX_HELD_RECORDS = 64;
/**
 * A connection held back that has not reached ESTABLISHED this long is no browser's: a scan,
 * a SYN flood's half-open entry, a SYN answered with a SYN cookie. Let through.
 */
const HOLD_HALF_OPEN_MS = 3000;
/** Kept past TIME-WAIT (60 s here, as Linux's TCP_TIMEWAIT_LEN), when the stack's end closed first. */
const FORGET_EXCLUDED_MS = 120_000;

/** Records held back of a connection to the page's port that has carried no request yet. */
interface Held {
  since: number;
  lines: string[];
  established: boolean;
}

/** The last `capacity` records as JSON lines, numbered for good by `start`..`end`. */
export class RecordRing {
  private readonly lines: string[];
  private readonly conns: (ConnId | null)[];
  start = 0;
  end = 0;

  constructor(readonly capacity: number) {
    this.lines = new Array<string>(capacity);
    this.conns = new Array<ConnId | null>(capacity);
  }

  push(line: string, conn: ConnId | null): void {
    const i = this.end % this.capacity;
    this.lines[i] = line;
    this.conns[i] = conn;
    this.end++;
    if (this.end - this.start > this.capacity) this.start = this.end - this.capacity;
  }

  /** Record `seq`'s line, or '' for one removed by forget(). */
  line(seq: number): string {
    return this.lines[seq % this.capacity] ?? '';
  }

  /** Removes a connection's records (a page's own connection, found out late). */
  forget(conn: ConnId): void {
    for (let seq = this.start; seq < this.end; seq++) {
      const i = seq % this.capacity;
      if (this.conns[i] === conn) this.lines[i] = '';
    }
  }
}

interface Client {
  res: http.ServerResponse;
  /** The next record it has not been sent. */
  next: number;
}

export class PageLive {
  readonly ring: RecordRing;
  private readonly clients = new Set<Client>();
  /** Connections of the pages themselves: their records are not kept (see exclude()). */
  private readonly excluded = new Set<ConnId>();
  /** Connections to `ownPort` that carried no request yet, in the order they came (see PageLiveOptions.ownPort). */
  private readonly held = new Map<ConnId, Held>();
  /** Connections to `ownPort` let through: the stack's workload, or no browser's. */
  private readonly shown = new Set<ConnId>();
  /** How a ConnId on `ownPort` reads: `:PORT>` (the local end is first, and only it is followed by '>'). */
  private readonly ownPortMark: string | null;
  private stopSource: (() => void) | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private connectionsTimer: NodeJS.Timeout | null = null;
  /** The latest meta record (the trace's first): kept even when the ring has moved past it. */
  private meta: { seq: number; line: string } | null = null;
  private readonly maxClients: number;
  private readonly clientHighWater: number;
  private readonly lingerMs: number;
  private readonly flushMs: number;

  constructor(
    private readonly source: RecordSource,
    private readonly options: PageLiveOptions = {},
  ) {
    this.ring = new RecordRing(options.ringSize ?? 50_000);
    this.maxClients = options.maxClients ?? 16;
    this.clientHighWater = options.clientHighWater ?? 256 * 1024;
    this.lingerMs = options.lingerMs ?? 10_000;
    this.flushMs = options.flushMs ?? 100;
    this.ownPortMark = options.ownPort !== undefined ? `:${options.ownPort}>` : null;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  get tracing(): boolean {
    return this.stopSource !== null;
  }

  /**
   * A page's own connection (its SSE stream, the requests for the page and its scripts). The
   * SSE stream is TCP traffic of this very stack: traced, each batch sent would make frames
   * that make the next batch, and the page would mostly draw itself. So its records are
   * dropped before they reach the ring, and those that got in before the connection was
   * known (its handshake and first request) are removed. Forgotten a while after it closes.
   */
  exclude(conn: ConnId, socket: NodeJS.EventEmitter): void {
    if (this.excluded.has(conn)) return;
    this.excluded.add(conn);
    this.held.delete(conn);
    this.shown.delete(conn);
    this.ring.forget(conn);
    socket.once('close', () => this.forgetExcluded(conn));
  }

  private forgetExcluded(conn: ConnId): void {
    setTimeout(() => this.excluded.delete(conn), FORGET_EXCLUDED_MS).unref();
  }

  /** Follows `res` as an SSE stream from record `from` (a Last-Event-ID + 1, or the ring's start). */
  addClient(res: http.ServerResponse, from?: number): boolean {
    if (this.clients.size >= this.maxClients) return false;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // The retry field: how long EventSource waits before it reconnects.
    res.write('retry: 2000\n\n');
    const client: Client = { res, next: from !== undefined && from >= this.ring.start && from <= this.ring.end ? from : this.ring.start };
    this.clients.add(client);
    res.on('drain', () => this.send(client));
    res.on('close', () => this.removeClient(client));
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    this.attach();
    // A new page whose ring has moved past the trace's meta record gets it first (a page
    // resuming after Last-Event-ID has it already).
    if (from === undefined && this.meta && this.meta.seq < client.next) this.sendMeta(client);
    this.send(client);
    return true;
  }

  /** The ring as JSON lines, the latest meta record first if the ring has moved past it. */
  *jsonLines(): Generator<string> {
    if (this.meta && this.meta.seq < this.ring.start) yield this.meta.line + '\n';
    for (let seq = this.ring.start; seq < this.ring.end; seq++) {
      const line = this.ring.line(seq);
      if (line) yield line + '\n';
    }
  }

  /** Ends every page and stops the tracer (the service stops). */
  close(): void {
    for (const c of this.clients) c.res.destroy();
    this.clients.clear();
    this.detach();
  }

  private attach(): void {
    if (this.stopSource) return;
    this.stopSource = this.source((record) => this.onRecord(record));
    const provide = this.options.connections;
    if (provide) {
      this.connectionsTimer = setInterval(() => this.sendConnections(provide), this.options.connectionsMs ?? 500);
      this.connectionsTimer.unref();
    }
  }

  private detach(): void {
    this.stopSource?.();
    this.stopSource = null;
    // With no tracer, none of them will say more: decided again from their next records.
    this.held.clear();
    this.shown.clear();
    for (const timer of [this.lingerTimer, this.flushTimer]) if (timer) clearTimeout(timer);
    if (this.connectionsTimer) clearInterval(this.connectionsTimer);
    this.lingerTimer = this.flushTimer = this.connectionsTimer = null;
  }

  private removeClient(client: Client): void {
    if (!this.clients.delete(client) || this.clients.size > 0) return;
    this.lingerTimer = setTimeout(() => this.detach(), this.lingerMs);
    this.lingerTimer.unref();
  }

  private onRecord(record: TraceRecord): void {
    const conn = recordConn(record);
    if (conn !== null) {
      if (this.excluded.has(conn)) return;
      if (this.isOwnPort(conn) && !this.decided(conn)) return this.hold(conn, record);
    }
    const line = JSON.stringify(record);
    if (record.type === 'meta') this.meta = { seq: this.ring.end, line };
    // Its last record (TIME-WAIT ends in CLOSED too): the next connection of its 4-tuple is decided anew.
    else if (record.type === 'state' && record.to === 'CLOSED') this.shown.delete(record.conn);
    this.keep(line, conn);
  }

  private isOwnPort(conn: ConnId): boolean {
    return this.ownPortMark !== null && conn.includes(this.ownPortMark);
  }

  /** Is a connection to `ownPort` let through (its held records first)? */
  private decided(conn: ConnId): boolean {
    if (this.shown.has(conn)) return true;
    if (!this.options.carriedOtherRequest?.(conn)) return false;
    this.release(conn);
    return true;
  }

  /**
   * Holds back a record of a connection to the page's port that has carried no request: let
   * through when it does, dropped when a page request excludes it or it ends after ESTABLISHED
   * with none (the browser's unused connection), let through when it ends or waits
   * HOLD_HALF_OPEN_MS without reaching ESTABLISHED (a scan, a half-open connection).
   */
  private hold(conn: ConnId, record: TraceRecord): void {
    const now = Date.now();
    let held = this.held.get(conn);
    if (!held) {
      this.releaseStale(now);
      if (this.held.size >= MAX_HELD_CONNS) this.release(this.held.keys().next().value!);
      this.held.set(conn, (held = { since: now, lines: [], established: false }));
    }
    held.lines.push(JSON.stringify(record));
    if (record.type === 'state') {
      if (record.to === 'ESTABLISHED') held.established = true;
      else if (record.to === 'CLOSED' || record.to === 'TIME-WAIT') {
        if (!held.established) {
          this.release(conn);
          if (record.to === 'CLOSED') this.shown.delete(conn);
          return;
        }
        this.held.delete(conn);
        this.excluded.add(conn);
        this.forgetExcluded(conn);
        return;
      }
    }
    if (held.lines.length >= MAX_HELD_RECORDS) this.release(conn);
  }

  /** Lets a held connection through: its records into the ring, in their order. */
  private release(conn: ConnId): void {
    const held = this.held.get(conn);
    this.held.delete(conn);
    this.shown.add(conn);
    for (const line of held?.lines ?? []) this.keep(line, conn);
  }

  /** Lets through the held connections that have waited too long without reaching ESTABLISHED. */
  private releaseStale(now: number): void {
    for (const [conn, held] of this.held) if (!held.established && now - held.since >= HOLD_HALF_OPEN_MS) this.release(conn);
  }

  private keep(line: string, conn: ConnId | null): void {
    this.ring.push(line, conn);
    // One timer per batch: the records of this turn and the next flushMs go out together.
    if (!this.flushTimer && this.clients.size > 0) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        for (const c of this.clients) this.send(c);
      }, this.flushMs);
      this.flushTimer.unref();
    }
  }

  /** Sends what the client has not had, while its response holds less than the high water. */
  private send(client: Client): void {
    const { res } = client;
    if (res.destroyed) return;
    if (client.next < this.ring.start) {
      // Fell off the ring: too slow for the records coming in. Dropped; its EventSource
      // reconnects later and starts again from what the ring then holds.
      res.destroy();
      return;
    }
    while (client.next < this.ring.end && res.writableLength < this.clientHighWater) {
      const to = Math.min(this.ring.end, client.next + BATCH_RECORDS);
      const lines: string[] = [];
      for (let seq = client.next; seq < to; seq++) {
        const line = this.ring.line(seq);
        if (line) lines.push(line);
      }
      client.next = to;
      // The id lets a reconnecting EventSource say where it was (Last-Event-ID).
      if (lines.length > 0) res.write(`id: ${to - 1}\nevent: records\ndata: [${lines.join(',')}]\n\n`);
    }
  }

  private sendMeta(client: Client): void {
    if (this.meta) client.res.write(`event: records\ndata: [${this.meta.line}]\n\n`);
  }

  private sendConnections(provide: () => unknown[]): void {
    this.releaseStale(Date.now());
    const connections = provide().filter((entry) => {
      const c = entry as { conn?: string; state?: string };
      const conn = c.conn ?? '';
      if (this.excluded.has(conn)) return false;
      // The page's port: only what is let through (its listener is no connection of anyone's).
      return c.state === 'LISTEN' || !this.isOwnPort(conn) || this.decided(conn);
    });
    const message = `event: connections\ndata: ${JSON.stringify({ connections })}\n\n`;
    // A table is worth sending only to a page that keeps up; the next one comes soon.
    for (const c of this.clients) if (!c.res.destroyed && c.res.writableLength < this.clientHighWater) c.res.write(message);
  }
}
