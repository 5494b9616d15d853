// A scripted trace of one lossy HTTP download, record by record as src/trace/schema.ts
// describes them: for the page's tests, which need records without a stack producing them.

import type { ConnId, FrameRecord, TcpFields, TraceRecord } from '../../src/trace/schema.ts';

const STACK = '10.0.0.2';
const PEER = '10.0.0.1';
const MSS = 1460;

function tcpFrame(t: number, dir: 'in' | 'out', conn: ConnId, f: Partial<TcpFields> & { flags: string }): FrameRecord {
  const [sport, dport] = dir === 'out' ? [80, 40000] : [40000, 80];
  const tcp: TcpFields = { conn, sport, dport, seq: 0, ack: 0, rseq: 0, rack: 0, win: 502, winBytes: 64256, len: 0, options: '', sack: [], reason: null, retransmit: false, ...f };
  const [src, dst] = dir === 'out' ? [STACK, PEER] : [PEER, STACK];
  const summary = `${src}.${sport} > ${dst}.${dport}: Flags [${tcp.flags}], seq ${tcp.rseq}${tcp.len ? `:${tcp.rseq + tcp.len}` : ''}, ack ${tcp.rack}, win ${tcp.win}, length ${tcp.len}`;
  return { type: 'frame', t, dir, proto: 'tcp', len: 54 + tcp.len, src, dst, summary, tcp };
}

/**
 * A download of `segments` full segments from the stack's port 80 to 10.0.0.1:40000, every
 * `lossEvery`-th one lost once and sent again, with the states, cwnd and RTT records between.
 */
export function lossyDownload(segments = 40, lossEvery = 7): TraceRecord[] {
  const conn: ConnId = `${STACK}:80>${PEER}:40000`;
  const out: TraceRecord[] = [
    { type: 'meta', t: 0, version: 1, address: `${STACK}/24`, mac: '02:00:00:00:00:02', mtu: 1500, startedAt: '2026-01-01T00:00:00.000Z' },
    { type: 'arp', t: 0.5, event: 'resolved', ip: PEER, mac: '02:00:00:00:00:01', queued: 0 },
    tcpFrame(1, 'in', conn, { flags: 'S', options: 'mss 1460,sackOK,nop,wscale 7' }),
    { type: 'state', t: 1, conn, from: 'LISTEN', to: 'SYN-RECEIVED', event: 'SYN received', rfc: 'RFC 9293 3.10.7.2' },
    tcpFrame(1, 'out', conn, { flags: 'S.', rack: 1, options: 'mss 1460,sackOK,nop,wscale 7', reason: 'syn' }),
    tcpFrame(2, 'in', conn, { flags: '.', rseq: 1, rack: 1 }),
    { type: 'state', t: 2, conn, from: 'SYN-RECEIVED', to: 'ESTABLISHED', event: 'ACK of SYN received', rfc: 'RFC 9293 3.10.7.4, fifth' },
    { type: 'rtt', t: 2, conn, cause: 'sample', sampleUs: 1000, srttUs: 1000, rttvarUs: 500, rtoUs: 200_000, backoff: 0, minRttUs: 1000 },
    tcpFrame(2.5, 'in', conn, { flags: 'P.', rseq: 1, rack: 1, len: 80 }),
  ];
  let cwnd = 10 * MSS;
  let ssthresh: number | null = null;
  for (let i = 0; i < segments; i++) {
    const t = 3 + i * 0.2;
    const rseq = 1 + i * MSS;
    out.push(tcpFrame(t, 'out', conn, { flags: '.', rseq, rack: 81, len: MSS, reason: 'data' }));
    if (i % lossEvery === lossEvery - 1) {
      out.push(tcpFrame(t + 0.05, 'in', conn, { flags: '.', rseq: 81, rack: rseq, sack: [[rseq + MSS, rseq + 2 * MSS]] }));
      out.push({ type: 'retransmit', t: t + 0.1, conn, rseq, len: MSS, why: 'rack', backoff: 0, text: 'RACK: sent before a delivered segment, reorder window passed (RFC 8985 6.2)' });
      out.push(tcpFrame(t + 0.1, 'out', conn, { flags: '.', rseq, rack: 81, len: MSS, retransmit: true, reason: 'sack-retransmit' }));
      const prev = { cwnd, ssthresh, phase: 'open' as const };
      ssthresh = Math.round(cwnd * 0.7);
      cwnd = ssthresh;
      out.push({ type: 'cc', t: t + 0.1, conn, cwnd, ssthresh, phase: 'sack-recovery', prev, mss: MSS, cause: 'CUBIC beta on loss' });
    } else {
      out.push(tcpFrame(t + 0.1, 'in', conn, { flags: '.', rseq: 81, rack: rseq + MSS }));
      out.push({ type: 'rtt', t: t + 0.1, conn, cause: 'sample', sampleUs: 1100, srttUs: 1050, rttvarUs: 400, rtoUs: 200_000, backoff: 0, minRttUs: 1000 });
    }
  }
  const end = 3 + segments * 0.2;
  const last = 1 + segments * MSS;
  out.push(tcpFrame(end, 'out', conn, { flags: 'F.', rseq: last, rack: 81, reason: 'fin' }));
  out.push({ type: 'state', t: end, conn, from: 'ESTABLISHED', to: 'FIN-WAIT-1', event: 'close() called', rfc: 'RFC 9293 3.10.4' });
  return out;
}
