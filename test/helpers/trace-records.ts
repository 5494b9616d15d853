// Schema-valid trace records (src/trace/schema.ts) of a bulk transfer with loss, made by a
// small model of a SACK sender (RFC 6675 recovery, RFC 5681 slow start and congestion
// avoidance, RFC 6298 RTT estimation) and a receiver that ACKs every segment with SACK blocks
// (RFC 2018: the block of the newest segment first). Both ends' traces come out: the
// client's (10.0.0.1, sending) and the server's (10.0.0.2, receiving). The tests of the
// charts and of `tapstack plot` use it where they need exact counts (bars, retransmissions,
// SACK blocks); traces of the real stack come from stack.trace().

import type { ConnId, FrameRecord, TraceRecord } from '../../src/trace/schema.ts';
import type { TcpState } from '../../src/tcp/state.ts';
import type { SendReason } from '../../src/tcp/tcb.ts';

export interface LossyTransferOptions {
  /** Data segments to send. */
  segments: number;
  mss?: number;
  /** Segment indices (0-based) whose first transmission is lost. */
  lost?: readonly number[];
  /** Round-trip time in ms (the one-way delay is half). */
  rttMs?: number;
  /** The client's link rate, Mbit/s: segments leave one after the other (default 20). */
  linkMbps?: number;
  /** Time of the SYN, ms. */
  start?: number;
  clientPort?: number;
  serverPort?: number;
}

export interface LossyTransfer {
  client: TraceRecord[];
  server: TraceRecord[];
  /** The client's connection id (`10.0.0.1:P>10.0.0.2:Q`); the server's is its mirror. */
  conn: ConnId;
  serverConn: ConnId;
  /** Data segments the client sent, retransmissions included. */
  dataSegmentsSent: number;
  /** The relative sequence numbers of the retransmitted segments, in order. */
  retransmitted: number[];
  /** SACK blocks the client received, over all ACKs. */
  sackBlocks: number;
}

const CLIENT = '10.0.0.1';
const SERVER = '10.0.0.2';
const RECEIVE_WINDOW = 65535;

interface Segment {
  rseq: number;
  rack: number;
  flags: string;
  len: number;
  sack: Array<[number, number]>;
  win: number;
  retransmit: boolean;
  reason: SendReason | null;
}

function frame(t: number, dir: 'in' | 'out', conn: ConnId, src: string, sport: number, dst: string, dport: number, s: Segment): FrameRecord {
  const options = s.flags.includes('S') ? 'mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7' : s.sack.length ? `nop,nop,sack ${s.sack.map(([l, r]) => `${l}:${r}`).join(' ')}` : '';
  const seq = s.len > 0 ? `seq ${s.rseq}:${s.rseq + s.len}, ` : s.flags.includes('S') || s.flags.includes('F') ? `seq ${s.rseq}, ` : '';
  const ack = s.flags.includes('.') ? `ack ${s.rack}, ` : '';
  return {
    type: 'frame',
    t,
    dir,
    proto: 'tcp',
    len: 14 + 20 + 32 + s.len,
    src,
    dst,
    summary: `${src}.${sport} > ${dst}.${dport}: Flags [${s.flags}], ${seq}${ack}win ${s.win}${options ? `, options [${options}]` : ''}, length ${s.len}`,
    tcp: {
      conn,
      sport,
      dport,
      flags: s.flags,
      seq: s.rseq + 1000,
      ack: s.rack + 5000,
      rseq: s.rseq,
      rack: s.rack,
      win: s.win,
      winBytes: s.win,
      len: s.len,
      options,
      sack: s.sack,
      reason: dir === 'out' ? s.reason : null,
      retransmit: dir === 'out' && s.retransmit,
    },
  };
}

/** The transfer, handshake to TIME-WAIT, from both ends. Deterministic. */
export function lossyTransfer(options: LossyTransferOptions): LossyTransfer {
  const mss = options.mss ?? 1448;
  const owd = (options.rttMs ?? 20) / 2;
  const lost = new Set(options.lost ?? []);
  const cport = options.clientPort ?? 40000;
  const sport = options.serverPort ?? 7;
  const conn = `${CLIENT}:${cport}>${SERVER}:${sport}`;
  const serverConn = `${SERVER}:${sport}>${CLIENT}:${cport}`;
  const client: TraceRecord[] = [];
  const server: TraceRecord[] = [];
  const n = options.segments;
  let t = options.start ?? 10;

  // Events in time order (stable for equal times).
  const queue: Array<{ t: number; order: number; run: () => void }> = [];
  let order = 0;
  const at = (when: number, run: () => void): void => {
    queue.push({ t: when, order: order++, run });
    queue.sort((a, b) => a.t - b.t || a.order - b.order);
  };

  const meta = (address: string, mac: string): TraceRecord => ({ type: 'meta', t, version: 1, address, mac, mtu: 1500, startedAt: '2024-01-01T00:00:00.000Z' });
  client.push(meta(`${CLIENT}/24`, '02:00:00:00:00:01'));
  server.push(meta(`${SERVER}/24`, '02:00:00:00:00:02'));
  const clientState = (from: TcpState, to: TcpState, event: string, rfc: string): void => {
    client.push({ type: 'state', t, conn, from, to, event, rfc });
  };
  const serverState = (from: TcpState, to: TcpState, event: string, rfc: string): void => {
    server.push({ type: 'state', t, conn: serverConn, from, to, event, rfc });
  };
  const seg = (p: Partial<Segment> & { rseq: number; rack: number; flags: string }): Segment => ({
    len: 0,
    sack: [],
    win: RECEIVE_WINDOW,
    retransmit: false,
    reason: 'ack',
    ...p,
  });
  // The client's link sends one frame at a time: a burst leaves spread over its serialization.
  const bitsPerMs = (options.linkMbps ?? 20) * 1000;
  let linkFreeAt = 0;
  /** The client sends (when its link is free); the server sees it after the one-way delay unless it is lost. */
  const clientSends = (s: Segment, isLost: boolean, onArrival: () => void, onLeave?: () => void): void => {
    const departure = Math.max(t, linkFreeAt);
    linkFreeAt = Math.round((departure + ((66 + s.len) * 8) / bitsPerMs) * 1000) / 1000;
    const leave = (): void => {
      onLeave?.();
      client.push(frame(t, 'out', conn, CLIENT, cport, SERVER, sport, s));
      if (!isLost)
        at(t + owd, () => {
          server.push(frame(t, 'in', serverConn, CLIENT, cport, SERVER, sport, s));
          onArrival();
        });
    };
    if (departure === t) leave();
    else at(departure, leave);
  };
  const serverSends = (s: Segment, onArrival: (arrived: FrameRecord) => void): void => {
    server.push(frame(t, 'out', serverConn, SERVER, sport, CLIENT, cport, s));
    at(t + owd, () => {
      const arrived = frame(t, 'in', conn, SERVER, sport, CLIENT, cport, s);
      client.push(arrived);
      onArrival(arrived);
    });
  };

  // The sender's congestion state, in segments (cwnd, ssthresh) as RFC 5681 counts them.
  let cwnd = 10;
  let ssthresh: number | null = null;
  let phase: 'open' | 'sack-recovery' = 'open';
  let recoveryPoint = 0;
  let nextNew = 0;
  let cumAcked = 0; // segments acknowledged cumulatively
  const sacked = new Set<number>();
  const retransmittedSet = new Set<number>();
  const sentAt = new Map<number, number>();
  let dupacks = 0;
  let srtt = 0;
  let rttvar = 0;
  let dataSegmentsSent = 0;
  let sackBlocks = 0;
  const retransmitted: number[] = [];
  let finSent = false;

  const ccRecord = (prev: { cwnd: number; ssthresh: number | null; phase: 'open' | 'sack-recovery' }, cause: string): void => {
    const bytes = (v: number | null): number | null => (v === null ? null : Math.round(v * mss));
    client.push({
      type: 'cc',
      t,
      conn,
      cwnd: bytes(cwnd)!,
      ssthresh: bytes(ssthresh),
      phase,
      prev: { cwnd: bytes(prev.cwnd)!, ssthresh: bytes(prev.ssthresh), phase: prev.phase },
      mss,
      cause,
    });
  };
  const rttSample = (sampleMs: number): void => {
    // RFC 6298 2.2 and 2.3, RTO floored at Linux's 200 ms.
    if (srtt === 0) (srtt = sampleMs), (rttvar = sampleMs / 2);
    else (rttvar = 0.75 * rttvar + 0.25 * Math.abs(srtt - sampleMs)), (srtt = 0.875 * srtt + 0.125 * sampleMs);
    const rto = Math.max(200, srtt + 4 * rttvar);
    client.push({ type: 'rtt', t, conn, cause: 'sample', sampleUs: Math.round(sampleMs * 1000), srttUs: Math.round(srtt * 1000), rttvarUs: Math.round(rttvar * 1000), rtoUs: Math.round(rto * 1000), backoff: 0 });
  };

  // The receiver: which segments it holds, its cumulative ACK, its SACK blocks.
  const received = new Set<number>();
  let newest = -1;
  const receiverAck = (): Segment => {
    let first = 0;
    while (received.has(first)) first++;
    // Blocks above the hole, the one holding the newest segment first (RFC 2018 4).
    const blocks: Array<[number, number]> = [];
    for (let i = first; i < n; i++) {
      if (!received.has(i)) continue;
      let j = i;
      while (received.has(j + 1)) j++;
      blocks.push([1 + i * mss, 1 + (j + 1) * mss]);
      i = j;
    }
    const newestBlock = blocks.findIndex(([l, r]) => l <= 1 + newest * mss && 1 + newest * mss < r);
    if (newestBlock > 0) blocks.unshift(...blocks.splice(newestBlock, 1));
    const buffered = blocks.reduce((sum, [l, r]) => sum + r - l, 0);
    return seg({ rseq: 1, rack: 1 + first * mss, flags: '.', sack: blocks.slice(0, 3), win: RECEIVE_WINDOW - buffered });
  };

  /** RFC 6675's pipe: segments in flight, not SACKed, not deemed lost (or lost and resent). */
  const pipe = (): number => {
    let count = 0;
    for (let i = cumAcked; i < nextNew; i++) {
      if (sacked.has(i)) continue;
      let above = 0;
      for (const s of sacked) if (s > i) above++;
      const deemedLost = above >= 3;
      if (!deemedLost || retransmittedSet.has(i)) count++;
    }
    return count;
  };

  const sendData = (i: number, retransmit: boolean): void => {
    dataSegmentsSent++;
    if (retransmit) {
      retransmitted.push(1 + i * mss);
      retransmittedSet.add(i);
    }
    const s = seg({ rseq: 1 + i * mss, rack: 1, flags: 'P.', len: mss, retransmit, reason: retransmit ? 'sack-retransmit' : 'data' });
    const onLeave = (): void => {
      if (retransmit) client.push({ type: 'retransmit', t, conn, rseq: 1 + i * mss, len: mss, why: 'sack', backoff: 0, text: 'SACK scoreboard marks it lost (RFC 6675 5)' });
      else sentAt.set(i, t);
    };
    const onArrival = (): void => {
      received.add(i);
      newest = i;
      serverSends(receiverAck(), onAck);
    };
    clientSends(s, !retransmit && lost.has(i), onArrival, onLeave);
  };

  /** The first segment deemed lost and not yet resent (RFC 6675 NextSeg rule 1), or -1. */
  const firstHole = (): number => {
    for (let i = cumAcked; i < nextNew; i++) {
      if (sacked.has(i) || retransmittedSet.has(i)) continue;
      let above = 0;
      for (const s of sacked) if (s > i) above++;
      if (above >= 3) return i;
    }
    return -1;
  };

  const trySend = (): void => {
    // Holes first in recovery, then new data.
    while (pipe() < Math.floor(cwnd)) {
      const hole = phase === 'sack-recovery' ? firstHole() : -1;
      if (hole >= 0) sendData(hole, true);
      else if (nextNew < n) sendData(nextNew++, false);
      else break;
    }
    if (cumAcked === n && !finSent) {
      finSent = true;
      clientState('ESTABLISHED', 'FIN-WAIT-1', 'CLOSE call', 'RFC 9293 3.10.4');
      const fin = seg({ rseq: 1 + n * mss, rack: 1, flags: 'F.', reason: 'fin' });
      clientSends(fin, false, () => {
        serverState('ESTABLISHED', 'CLOSE-WAIT', 'FIN received', 'RFC 9293 3.10.7.4, eighth');
        serverSends(seg({ rseq: 1, rack: 2 + n * mss, flags: '.' }), () => clientState('FIN-WAIT-1', 'FIN-WAIT-2', 'ACK of our FIN', 'RFC 9293 3.10.7.4, fifth'));
        at(t + 1, () => {
          serverState('CLOSE-WAIT', 'LAST-ACK', 'CLOSE call', 'RFC 9293 3.10.4');
          serverSends(seg({ rseq: 1, rack: 2 + n * mss, flags: 'F.', reason: 'fin' }), () => {
            clientState('FIN-WAIT-2', 'TIME-WAIT', 'FIN received', 'RFC 9293 3.10.7.4, eighth');
            clientSends(seg({ rseq: 2 + n * mss, rack: 2, flags: '.' }), false, () =>
              serverState('LAST-ACK', 'CLOSED', 'ACK of our FIN', 'RFC 9293 3.10.7.4, fifth'),
            );
          });
        });
      });
    }
  };

  const onAck = (f: FrameRecord): void => {
    const tcp = f.tcp!;
    if (finSent) return;
    sackBlocks += tcp.sack.length;
    for (const [l, r] of tcp.sack) for (let s = l; s < r; s += mss) sacked.add((s - 1) / mss);
    const ackedSegs = Math.floor((tcp.rack - 1) / mss);
    const prev = { cwnd, ssthresh, phase };
    if (ackedSegs > cumAcked) {
      // Karn's rule (RFC 6298 3): no sample from a retransmitted segment.
      const newestAcked = ackedSegs - 1;
      if (!retransmittedSet.has(newestAcked)) rttSample(t - sentAt.get(newestAcked)!);
      const advanced = ackedSegs - cumAcked;
      cumAcked = ackedSegs;
      for (const s of [...sacked]) if (s < cumAcked) sacked.delete(s);
      dupacks = 0;
      if (phase === 'sack-recovery') {
        if (cumAcked >= recoveryPoint) {
          phase = 'open';
          cwnd = ssthresh!;
          ccRecord(prev, 'recovery done: cwnd = ssthresh (RFC 6675 5)');
        }
      } else {
        cwnd = ssthresh === null || cwnd < ssthresh ? cwnd + advanced : cwnd + advanced / cwnd;
        ccRecord(prev, ssthresh === null || prev.cwnd < ssthresh ? 'slow start (RFC 5681 3.1)' : 'congestion avoidance (RFC 5681 3.1)');
      }
    } else if (tcp.sack.length > 0 && phase === 'open') {
      dupacks++;
      if (dupacks === 3) {
        // RFC 6675 5: enter loss recovery; ssthresh = cwnd = FlightSize / 2 (RFC 5681 (4)).
        ssthresh = Math.max(2, Math.floor(pipe() / 2));
        cwnd = ssthresh;
        phase = 'sack-recovery';
        recoveryPoint = nextNew;
        ccRecord(prev, 'Reno halving on loss (RFC 5681 3.2)');
        // RFC 6675 5 (3): the first hole goes at once, whatever the pipe.
        const hole = firstHole();
        if (hole >= 0) sendData(hole, true);
      }
    }
    trySend();
  };

  // The handshake.
  clientState('CLOSED', 'SYN-SENT', 'OPEN call (active)', 'RFC 9293 3.10.1');
  clientSends(seg({ rseq: 0, rack: 0, flags: 'S', reason: 'syn' }), false, () => {
    serverState('CLOSED', 'SYN-RECEIVED', 'SYN on a listening port', 'RFC 9293 3.10.7.2');
    serverSends(seg({ rseq: 0, rack: 1, flags: 'S.', reason: 'syn' }), () => {
      clientState('SYN-SENT', 'ESTABLISHED', 'SYN-ACK acknowledging our SYN', 'RFC 9293 3.10.7.3, fourth');
      rttSample(2 * owd);
      clientSends(seg({ rseq: 1, rack: 1, flags: '.' }), false, () => serverState('SYN-RECEIVED', 'ESTABLISHED', 'ACK of our SYN', 'RFC 9293 3.10.7.4, fifth'));
      trySend();
    });
  });

  for (let guard = 0; queue.length > 0 && guard < 1_000_000; guard++) {
    const e = queue.shift()!;
    t = e.t;
    e.run();
  }
  return { client, server, conn, serverConn, dataSegmentsSent, retransmitted, sackBlocks };
}

/** Two traces merged in time order (records of equal time keep their order). */
export function mergeTraces(...traces: TraceRecord[][]): TraceRecord[] {
  return traces
    .flat()
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.t - b.r.t || a.i - b.i)
    .map((x) => x.r);
}

/**
 * A long transfer without a model: `segments` back-to-back data segments, each ACKed, every
 * `rexmitEvery`-th one sent again later. For the thinning of very large traces.
 */
export function bigTransfer(segments: number, rexmitEvery: number): { records: TraceRecord[]; conn: ConnId; retransmissions: number } {
  const conn = `${CLIENT}:40000>${SERVER}:9`;
  const mss = 1448;
  const records: TraceRecord[] = [];
  let retransmissions = 0;
  const out = (t: number, rseq: number, retransmit: boolean): void => {
    records.push(frame(t, 'out', conn, CLIENT, 40000, SERVER, 9, { rseq, rack: 1, flags: '.', len: mss, sack: [], win: RECEIVE_WINDOW, retransmit, reason: retransmit ? 'retransmit' : 'data' }));
  };
  for (let i = 0; i < segments; i++) {
    const t = i * 0.01;
    out(t, 1 + i * mss, false);
    if (i % rexmitEvery === rexmitEvery - 1) {
      out(t + 0.005, 1 + (i - 5) * mss, true);
      retransmissions++;
    }
    records.push(frame(t + 0.008, 'in', conn, SERVER, 9, CLIENT, 40000, { rseq: 1, rack: 1 + (i + 1) * mss, flags: '.', len: 0, sack: [], win: RECEIVE_WINDOW, retransmit: false, reason: null }));
  }
  return { records, conn, retransmissions };
}
