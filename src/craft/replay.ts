// Replays the client side of one recorded TCP connection against a live peer, as tcpliveplay
// does: the recorded client's segments go out in order, with addresses, ports and MACs
// rewritten, SEQ moved to a chosen ISN and ACK moved by (peer's ISN - recorded peer's ISN) once
// the peer's SYN-ACK has come. Before each segment the replay waits until the peer has sent what
// that segment acknowledges (its ACK number, re-anchored), for at most timeoutMs: a live peer
// answers at its own pace, and an ACK of data it has not sent would be unacceptable (RFC 9293
// 3.10.7.4). What the peer sent is reported.

import { formatIpv4 } from '../ipv4/address.ts';
import type { PcapRecord } from '../link/pcap.ts';
import { ACK, FIN, RST, SYN } from '../tcp/tcp-segment.ts';
import { type Dissected, dissect } from './dissect.ts';
import { ether, ipv4, stack, tcp, type TcpOption } from './layers.ts';
import type { Wire } from './wire.ts';

export interface ReplayOptions {
  /** The recorded client, when the capture holds more than one connection (default: the first SYN's sender). */
  client?: { ip: string; port: number };
  /** The live peer's address and port (default: the wire's peerIp, and the recorded server port). */
  peerIp?: string;
  peerPort?: number;
  /** Our port (default the recorded client's). */
  localPort?: number;
  /** Our ISN (default the recorded client's). */
  localIsn?: number;
  /** How long to wait for each answer of the peer (the wire's clock), default 1000 ms. */
  timeoutMs?: number;
  /**
   * 'echo' (default): the timestamp option's TSecr becomes the peer's latest TSval, so the
   * peer's RTT samples (RFC 7323 4.3) are real ones; 'keep': as recorded.
   */
  timestamps?: 'echo' | 'keep';
}

export interface ReplayReport {
  /** Segments sent. */
  sent: number;
  recordedPeerIsn: number;
  /** The live peer's ISN, from its SYN-ACK (null when none came). */
  peerIsn: number | null;
  /** Every segment the peer sent on the connection. */
  peerSegments: Dissected[];
  /** The peer's data in sequence order, each byte once. */
  peerData: Buffer;
  /** Answers that did not come in time: which segment was waiting, and for what ack. */
  timeouts: string[];
}

const seqGe = (a: number, b: number): boolean => ((a - b) | 0) >= 0;
const seqLen = (f: Dissected): number => f.payload.length + (f.tcp!.flags & SYN ? 1 : 0) + (f.tcp!.flags & FIN ? 1 : 0);

export async function replay(wire: Wire, capture: (PcapRecord | Uint8Array)[], options: ReplayOptions = {}): Promise<ReplayReport> {
  const recorded = capture.map((r) => dissect(r instanceof Uint8Array ? r : r.frame));
  const syn = recorded.find(
    (f) => f.tcp !== undefined && (f.tcp.flags & (SYN | ACK)) === SYN && (options.client === undefined || (f.ipv4!.src === options.client.ip && f.tcp.sport === options.client.port)),
  );
  if (syn === undefined) throw new Error('replay: no SYN in the capture (of the given client)');
  const client = { ip: syn.ipv4!.src, port: syn.tcp!.sport };
  const server = { ip: syn.ipv4!.dst, port: syn.tcp!.dport };
  const fromClient = (f: Dissected): boolean =>
    f.tcp !== undefined && f.ipv4!.src === client.ip && f.tcp.sport === client.port && f.ipv4!.dst === server.ip && f.tcp.dport === server.port;
  const synAck = recorded.find((f) => f.tcp !== undefined && f.ipv4!.src === server.ip && f.tcp.sport === server.port && f.tcp.dport === client.port && (f.tcp.flags & (SYN | ACK)) === (SYN | ACK));
  if (synAck === undefined) throw new Error('replay: the capture has no SYN-ACK from the server');
  const recordedClientIsn = syn.tcp!.seq;
  const recordedPeerIsn = synAck.tcp!.seq;

  const peerIp = options.peerIp ?? (wire.peerIp !== null ? formatIpv4(wire.peerIp) : server.ip);
  const peerPort = options.peerPort ?? server.port;
  const localPort = options.localPort ?? client.port;
  const localIsn = options.localIsn ?? recordedClientIsn;
  const timeoutMs = options.timeoutMs ?? 1000;
  const ours = (f: Dissected): boolean => f.tcp !== undefined && f.ipv4!.src === peerIp && f.tcp.sport === peerPort && f.tcp.dport === localPort;
  const seen = wire.frames.length; // the peer's earlier frames belong to something else
  const peerSegments = (): Dissected[] => wire.frames.slice(seen).filter(ours);

  const report: ReplayReport = { sent: 0, recordedPeerIsn, peerIsn: null, peerSegments: [], peerData: Buffer.alloc(0), timeouts: [] };
  /** The sequence number just past what the peer has sent so far. */
  const peerSent = (): number | null => {
    let end: number | null = null;
    for (const f of peerSegments()) {
      const e = (f.tcp!.seq + seqLen(f)) >>> 0;
      if (end === null || seqGe(e, end)) end = e;
    }
    return end;
  };

  for (const [index, f] of recorded.entries()) {
    if (!fromClient(f)) continue;
    const t = f.tcp!;
    const acks = (t.flags & ACK) !== 0;
    if (acks && report.peerIsn === null) {
      const sa = await wire.expect((g) => ours(g) && (g.tcp!.flags & (SYN | ACK)) === (SYN | ACK), { timeoutMs }).catch(() => null);
      if (sa === null) {
        report.timeouts.push(`frame ${index + 1}: no SYN-ACK from ${peerIp}.${peerPort}`);
        break;
      }
      report.peerIsn = sa.tcp!.seq;
    }
    const peerShift = report.peerIsn === null ? 0 : (report.peerIsn - recordedPeerIsn) | 0;
    const ack = acks ? (t.ack + peerShift) >>> 0 : t.ack;
    if (acks && (t.flags & RST) === 0) {
      const reached = (): boolean => {
        const end = peerSent();
        return end !== null && seqGe(end, ack);
      };
      if (!reached()) {
        const got = await wire.expect((g) => ours(g) && reached(), { timeoutMs }).catch(() => null);
        if (got === null) report.timeouts.push(`frame ${index + 1}: the peer did not send up to ack ${ack}`);
      }
    }
    const latestPeerTsVal = (): number | null => {
      const last = peerSegments().at(-1);
      const ts = last?.tcp!.options.find((o) => o.kind === 'timestamp');
      return ts !== undefined && ts.kind === 'timestamp' ? ts.val : null;
    };
    const echo = options.timestamps !== 'keep' ? latestPeerTsVal() : null;
    const tcpOptions = t.options.map((o): TcpOption => {
      if (o.kind === 'sack') return { kind: 'sack', blocks: o.blocks.map(([l, r]) => [(l + peerShift) >>> 0, (r + peerShift) >>> 0]) };
      if (o.kind === 'timestamp' && echo !== null && acks) return { ...o, ecr: echo };
      return o;
    });
    const ip = f.ipv4!;
    wire.send(
      stack(
        ether({ src: wire.mac }),
        ipv4({ src: wire.ip, dst: peerIp, ttl: ip.ttl, id: ip.id, tos: ip.tos, flags: { df: ip.flags.df } }),
        tcp({ sport: localPort, dport: peerPort, seq: (t.seq - recordedClientIsn + localIsn) >>> 0, ack, flags: t.flags, window: t.window, urg: t.urg, options: tcpOptions }),
        f.payload,
      ),
    );
    report.sent++;
  }
  report.peerSegments = peerSegments();
  report.peerData = peerDataInOrder(report.peerSegments, report.peerIsn);
  return report;
}

/** The peer's bytes from its ISN + 1 on, each once, up to the first hole. */
function peerDataInOrder(segments: Dissected[], isn: number | null): Buffer {
  if (isn === null) return Buffer.alloc(0);
  const parts = new Map<number, Buffer>();
  for (const f of segments) {
    if (f.payload.length === 0) continue;
    const at = (f.tcp!.seq - isn - 1) >>> 0;
    const had = parts.get(at);
    if (had === undefined || had.length < f.payload.length) parts.set(at, f.payload);
  }
  const out: Buffer[] = [];
  let next = 0;
  for (;;) {
    // The part that covers `next` and reaches furthest.
    let best: Buffer | null = null;
    let bestAt = 0;
    for (const [at, data] of parts)
      if (at <= next && at + data.length > next && (best === null || at + data.length > bestAt + best.length)) {
        best = data;
        bestAt = at;
      }
    if (best === null) break;
    out.push(best.subarray(next - bestAt));
    next = bestAt + best.length;
  }
  return Buffer.concat(out);
}
