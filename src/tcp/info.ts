// TCP_INFO: a connection's state as Linux's struct tcp_info reports it (include/uapi/linux/
// tcp.h), read from the TCB the way tcp_get_info() in net/ipv4/tcp.c reads a tcp_sock: the
// same field names, the same units (microseconds for RTT and RTO, milliseconds for the
// last_* ages, segments for cwnd, ssthresh and the scoreboard counts), so that a packetdrill
// assertion on tcpi_* fields reads the same here. Where the stack keeps a quantity
// differently (cwnd in bytes, RTT in ms), it is converted; where it kept none, a small
// addition to the TCB measures it as Linux does (receive-measure.ts for tcpi_rcv_mss,
// tcpi_rcv_rtt and tcpi_rcv_space; recovery/delivery-rate.ts for tcpi_delivery_rate and
// tcpi_delivered). The few fields that are approximations say so in their comment.

import type { ConnectionStats } from './counters.ts';
import { advertisedMss } from './receive-measure.ts';
import { LOST, RETRANS_IN_FLIGHT, SACKED } from './recovery/sent-log.ts';
import { seqGt, seqSub } from './seq.ts';
import { isSynchronized, type TcpState } from './state.ts';
import type { Tcb } from './tcb.ts';
import type { TimeWaitEntry } from './time-wait.ts';
import { freeReceiveSpace } from './window.ts';

/** Linux's TCP states (include/net/tcp_states.h), as tcpi_state numbers them. */
export const LINUX_TCP_STATE: Readonly<Record<TcpState, number>> = {
  ESTABLISHED: 1,
  'SYN-SENT': 2,
  'SYN-RECEIVED': 3,
  'FIN-WAIT-1': 4,
  'FIN-WAIT-2': 5,
  'TIME-WAIT': 6,
  CLOSED: 7,
  'CLOSE-WAIT': 8,
  'LAST-ACK': 9,
  LISTEN: 10,
  CLOSING: 11,
};

/** Linux's congestion states (enum tcp_ca_state), as tcpi_ca_state numbers them. */
export const TCP_CA_Open = 0;
export const TCP_CA_Disorder = 1;
export const TCP_CA_CWR = 2;
export const TCP_CA_Recovery = 3;
export const TCP_CA_Loss = 4;

/** tcpi_options bits (include/uapi/linux/tcp.h). */
export const TCPI_OPT_TIMESTAMPS = 1;
export const TCPI_OPT_SACK = 2;
export const TCPI_OPT_WSCALE = 4;
export const TCPI_OPT_ECN = 8;
export const TCPI_OPT_ECN_SEEN = 16;
export const TCPI_OPT_SYN_DATA = 32;

/** Linux's TCP_INFINITE_SSTHRESH: tcpi_snd_ssthresh before the first loss. */
export const TCP_INFINITE_SSTHRESH = 0x7fffffff;
/** Linux's tcp_min_rtt before any sample (minmax reset to ~0U). */
const NO_MIN_RTT = 0xffffffff;
/** Linux's sysctl_tcp_reordering: the reordering degree assumed until more is seen. */
const TCP_REORDERING = 3;
/** Linux's TCP_INIT_CWND, what a listener reports as tcpi_snd_cwnd. */
const TCP_INIT_CWND = 10;

/**
 * Linux's struct tcp_info, field for field (the ones tcp_get_info fills and the stack can
 * know), with Linux's names and units. Plus `state`, the state's name, as an extra.
 */
export interface TcpInfo {
  /** The state's name as RFC 9293 writes it (an extra: Linux has only the number). */
  state: TcpState;
  /** Linux's state number: ESTABLISHED 1, SYN-SENT 2, SYN-RECV 3, FIN-WAIT1 4, FIN-WAIT2 5, TIME-WAIT 6, CLOSE 7, CLOSE-WAIT 8, LAST-ACK 9, LISTEN 10, CLOSING 11. */
  tcpi_state: number;
  /** Congestion state: Open 0, Disorder 1 (duplicate ACKs or SACKs seen), CWR 2 (never: no ECN), Recovery 3, Loss 4 (after an RTO). */
  tcpi_ca_state: number;
  /** Retransmission timeouts in a row for the data at SND.UNA (icsk_retransmits). */
  tcpi_retransmits: number;
  /** Zero-window or keepalive probes sent and unanswered (icsk_probes_out). */
  tcpi_probes: number;
  /** Exponential backoff of the RTO or of the persist timer (icsk_backoff). */
  tcpi_backoff: number;
  /** Options agreed in the handshake: TCPI_OPT_TIMESTAMPS 1, SACK 2, WSCALE 4 (ECN 8 never). */
  tcpi_options: number;
  /** The peer's window shift (what we apply to its window field); 0 without WSCALE. */
  tcpi_snd_wscale: number;
  /** Our window shift; 0 without WSCALE. */
  tcpi_rcv_wscale: number;
  /** Retransmission timeout with backoff, µs (icsk_rto). */
  tcpi_rto: number;
  /** Delayed-ACK timeout, µs; 0 before data arrived. Ours is the fixed delayedAckMs, Linux's adapts from 40 ms (icsk_ack.ato). */
  tcpi_ato: number;
  /** Payload size of our segments: the peer's MSS less the options we send (mss_cache). */
  tcpi_snd_mss: number;
  /** The peer's segment size as we see it (icsk_ack.rcv_mss, tcp_measure_rcv_mss). */
  tcpi_rcv_mss: number;
  /** Segments in flight, SYN and FIN included (packets_out); a listener: connections waiting for accept (0: the stack hands them over at once). */
  tcpi_unacked: number;
  /** Segments SACKed (sacked_out; without SACK the duplicate ACKs, as Linux's Reno emulation); a listener: its backlog. */
  tcpi_sacked: number;
  /** Segments marked lost (lost_out). Without SACK: 1 in fast recovery (the head, tcp_mark_head_lost), the segments in flight after an RTO until an ACK advances. */
  tcpi_lost: number;
  /** Retransmitted segments in flight (retrans_out). */
  tcpi_retrans: number;
  /** ms since data last went out (lsndtime), or since establishment. */
  tcpi_last_data_sent: number;
  /** ms since data last arrived in order (icsk_ack.lrcvtime), or since establishment. */
  tcpi_last_data_recv: number;
  /** ms since an acceptable ACK last arrived (rcv_tstamp). */
  tcpi_last_ack_recv: number;
  /** Path MTU (icsk_pmtu_cookie): the link's MTU, or less after ICMP fragmentation-needed. */
  tcpi_pmtu: number;
  /** Largest window we would offer now (rcv_ssthresh). The stack offers its free receive buffer at once, where Linux grows rcv_ssthresh from about 64 KB: an approximation. */
  tcpi_rcv_ssthresh: number;
  /** Smoothed RTT, µs (srtt_us >> 3); 0 before a sample. */
  tcpi_rtt: number;
  /** RTT variation, µs (mdev_us >> 2, RFC 6298 RTTVAR); 0 before a sample (Linux starts at 250 ms). */
  tcpi_rttvar: number;
  /** Slow start threshold in segments; TCP_INFINITE_SSTHRESH (0x7fffffff) before a loss. */
  tcpi_snd_ssthresh: number;
  /** Congestion window in segments (cwnd bytes over the MSS, rounded down). */
  tcpi_snd_cwnd: number;
  /** MSS we advertised, less the timestamp option when agreed (tp->advmss). */
  tcpi_advmss: number;
  /** Reordering degree assumed (tp->reordering): 3, the DupThresh; the stack's RACK widens its window in time, not in segments. */
  tcpi_reordering: number;
  /** Receive-side RTT estimate, µs (rcv_rtt_est, tcp_rcv_rtt_measure); 0 before one. */
  tcpi_rcv_rtt: number;
  /** Most bytes the application took in one receive RTT (rcvq_space.space, tcp_rcv_space_adjust), from 10 advertised MSS. */
  tcpi_rcv_space: number;
  /** Segments retransmitted over the connection's life (total_retrans). */
  tcpi_total_retrans: number;
  /** Bytes the peer acknowledged, SYN and FIN included as Linux counts snd_una's advance. */
  tcpi_bytes_acked: number;
  /** Bytes received in order, the peer's FIN included as Linux counts rcv_nxt's advance. */
  tcpi_bytes_received: number;
  /** Segments sent (a super-frame counts as its segments). */
  tcpi_segs_out: number;
  /** Segments received (a coalesced super-frame counts as its segments). */
  tcpi_segs_in: number;
  /** Bytes written and not yet sent (write_seq - snd_nxt). */
  tcpi_notsent_bytes: number;
  /** Least RTT of the last 300 s, µs (RACK's min_RTT from send times, else the least sample); 0xffffffff before one, as Linux. */
  tcpi_min_rtt: number;
  /** Segments received with data. */
  tcpi_data_segs_in: number;
  /** Segments sent with data, retransmissions included. */
  tcpi_data_segs_out: number;
  /** Last delivery rate sample, bytes per second (tcp_rate.c; every sample counts, no app-limited marking); 0 before one. */
  tcpi_delivery_rate: number;
  /** Segments delivered (ACKed or SACKed), the SYN (or SYN-ACK) and FIN included (tp->delivered). */
  tcpi_delivered: number;
  /** Payload bytes sent, retransmissions included. */
  tcpi_bytes_sent: number;
  /** Payload bytes retransmitted. */
  tcpi_bytes_retrans: number;
  /** Segments the peer reported received twice with D-SACK. */
  tcpi_dsack_dups: number;
  /** ACKs that showed reordering (reord_seen). */
  tcpi_reord_seen: number;
  /** The peer's window, bytes after scaling (snd_wnd). */
  tcpi_snd_wnd: number;
  /** The window we last advertised, bytes after scaling (rcv_wnd). */
  tcpi_rcv_wnd: number;
}

/** A tcp_info with every field 0 (what Linux's memset leaves for fields a state does not fill). */
function emptyInfo(state: TcpState): TcpInfo {
  return {
    state,
    tcpi_state: LINUX_TCP_STATE[state],
    tcpi_ca_state: TCP_CA_Open,
    tcpi_retransmits: 0,
    tcpi_probes: 0,
    tcpi_backoff: 0,
    tcpi_options: 0,
    tcpi_snd_wscale: 0,
    tcpi_rcv_wscale: 0,
    tcpi_rto: 0,
    tcpi_ato: 0,
    tcpi_snd_mss: 0,
    tcpi_rcv_mss: 0,
    tcpi_unacked: 0,
    tcpi_sacked: 0,
    tcpi_lost: 0,
    tcpi_retrans: 0,
    tcpi_last_data_sent: 0,
    tcpi_last_data_recv: 0,
    tcpi_last_ack_recv: 0,
    tcpi_pmtu: 0,
    tcpi_rcv_ssthresh: 0,
    tcpi_rtt: 0,
    tcpi_rttvar: 0,
    tcpi_snd_ssthresh: 0,
    tcpi_snd_cwnd: 0,
    tcpi_advmss: 0,
    tcpi_reordering: 0,
    tcpi_rcv_rtt: 0,
    tcpi_rcv_space: 0,
    tcpi_total_retrans: 0,
    tcpi_bytes_acked: 0,
    tcpi_bytes_received: 0,
    tcpi_segs_out: 0,
    tcpi_segs_in: 0,
    tcpi_notsent_bytes: 0,
    tcpi_min_rtt: 0,
    tcpi_data_segs_in: 0,
    tcpi_data_segs_out: 0,
    tcpi_delivery_rate: 0,
    tcpi_delivered: 0,
    tcpi_bytes_sent: 0,
    tcpi_bytes_retrans: 0,
    tcpi_dsack_dups: 0,
    tcpi_reord_seen: 0,
    tcpi_snd_wnd: 0,
    tcpi_rcv_wnd: 0,
  };
}

const us = (ms: number): number => Math.round(ms * 1000);
const msSince = (now: number, then: number): number => Math.max(0, Math.floor(now - then));

/** Linux's icsk_ca_state from the recovery state (tcp_fastretrans_alert, tcp_try_keep_open). */
function congestionState(c: Tcb, sacked: number, lost: number, retrans: number): number {
  const phase = c.recoveryPhase;
  // Linux enters CA_Loss on every retransmission timeout (tcp_enter_loss) and stays there
  // until the data then outstanding is acknowledged.
  if (phase === 'loss' || c.retries > 0) return TCP_CA_Loss;
  if (phase !== 'open') return TCP_CA_Recovery;
  return sacked > 0 || lost > 0 || retrans > 0 || c.recovery.dupAcks > 0 ? TCP_CA_Disorder : TCP_CA_Open;
}

/** tcp_get_info() for a connection. */
export function tcpInfo(c: Tcb): TcpInfo {
  const info = emptyInfo(c.state);
  const now = c.now();
  const snd = c.snd;
  const rcv = c.rcv;
  const stats = c.stats;
  const log = c.sent;
  const synchronized = isSynchronized(c.state);
  const opening = c.state === 'SYN-SENT' || c.state === 'SYN-RECEIVED';
  const finQueued = c.finQueued;
  const finSeq = c.finSeq();
  const finOutstanding = finQueued && seqGt(snd.max, finSeq) && !seqGt(snd.una, finSeq);
  const finAcked = finQueued && seqGt(snd.una, finSeq);

  // Segments in flight: the data records, and the SYN and FIN, which Linux queues as skbs.
  const unacked = (c.state === 'CLOSED' ? 0 : log.count) + (opening ? 1 : 0) + (finOutstanding ? 1 : 0);
  let sacked: number;
  let lost: number;
  if (c.sackPermitted) {
    sacked = log.countMarked(SACKED);
    lost = log.countMarked(LOST);
  } else {
    // Linux's Reno emulation counts duplicate ACKs as SACKed segments (tcp_add_reno_sack),
    // marks the head lost in fast recovery, and everything outstanding after an RTO.
    sacked = Math.min(c.recovery.dupAcks, Math.max(0, unacked - 1));
    lost = c.recoveryPhase === 'fast-recovery' ? 1 : c.retries > 0 && synchronized ? unacked : 0;
  }
  const retrans = log.countMarked(RETRANS_IN_FLIGHT);

  info.tcpi_ca_state = congestionState(c, sacked, lost, retrans);
  info.tcpi_retransmits = c.retries;
  info.tcpi_probes = c.probesOut + c.keepAliveProbesSent;
  info.tcpi_backoff = c.rtt.backoffs + c.persistBackoff;
  if (c.tsEnabled) info.tcpi_options |= TCPI_OPT_TIMESTAMPS;
  if (c.sackPermitted) info.tcpi_options |= TCPI_OPT_SACK;
  if (c.wscaleAgreed) {
    info.tcpi_options |= TCPI_OPT_WSCALE;
    info.tcpi_snd_wscale = snd.wscale;
    info.tcpi_rcv_wscale = rcv.wscale;
  }
  info.tcpi_rto = us(c.rtt.rto);
  info.tcpi_ato = c.receiveEstimates.dataSeen ? us(Math.min(c.config.delayedAckMs, 200)) : 0;
  info.tcpi_snd_mss = snd.mss;
  info.tcpi_rcv_mss = c.receiveEstimates.mss;
  info.tcpi_unacked = unacked;
  info.tcpi_sacked = sacked;
  info.tcpi_lost = lost;
  info.tcpi_retrans = retrans;
  info.tcpi_last_data_sent = msSince(now, c.lastDataSendTime);
  info.tcpi_last_data_recv = msSince(now, c.lastDataReceiveTime);
  info.tcpi_last_ack_recv = msSince(now, c.lastAckReceiveTime);
  // Our segments' size follows the path MTU (lowerMss after fragmentation-needed).
  const optionBytes = c.tsEnabled ? 12 : 0;
  info.tcpi_pmtu = synchronized ? Math.min(c.ctx.mtu, snd.mss + 40 + optionBytes) : c.ctx.mtu;
  info.tcpi_rcv_ssthresh = c.state === 'CLOSED' ? 0 : freeReceiveSpace(c);
  info.tcpi_rtt = us(c.rtt.srtt);
  info.tcpi_rttvar = us(c.rtt.rttvar);
  const cc = c.cc;
  info.tcpi_snd_ssthresh = cc.ssthresh >= TCP_INFINITE_SSTHRESH ? TCP_INFINITE_SSTHRESH : Math.floor(cc.ssthresh / cc.mss);
  info.tcpi_snd_cwnd = Math.floor(cc.cwnd / cc.mss);
  info.tcpi_advmss = advertisedMss(c);
  info.tcpi_reordering = TCP_REORDERING;
  info.tcpi_rcv_rtt = Math.floor(c.receiveEstimates.rttUs8 / 8);
  info.tcpi_rcv_space = c.receiveEstimates.space;
  info.tcpi_total_retrans = stats.retransmits;
  // Linux counts the advance of SND.UNA and RCV.NXT: our SYN when the peer acknowledges it
  // on an active open (a passive one starts past it), our FIN, the peer's FIN.
  const synAcked = !c.passive && synchronized ? 1 : 0;
  info.tcpi_bytes_acked = stats.bytesAcked + synAcked + (finAcked ? 1 : 0);
  info.tcpi_bytes_received = stats.bytesReceived + (c.finReceived ? 1 : 0);
  info.tcpi_segs_out = stats.segmentsOut;
  info.tcpi_segs_in = stats.segmentsIn;
  const dataInFlight = Math.max(0, seqSub(snd.max, snd.una) - (opening || snd.una === snd.iss ? 1 : 0) - (finOutstanding ? 1 : 0));
  info.tcpi_notsent_bytes = Math.max(0, c.sendBuffer.length - dataInFlight);
  info.tcpi_min_rtt = minRtt(c);
  info.tcpi_data_segs_in = stats.dataSegmentsIn;
  info.tcpi_data_segs_out = stats.dataSegmentsOut;
  info.tcpi_delivery_rate = log.rate.bytesPerSecond(snd.mss);
  // The SYN (active) or SYN-ACK (passive, tcp_rcv_state_process's delivered++) and the FIN are delivered segments too.
  info.tcpi_delivered = log.rate.delivered + (synchronized ? 1 : 0) + (finAcked ? 1 : 0);
  info.tcpi_bytes_sent = stats.bytesSent;
  info.tcpi_bytes_retrans = stats.bytesRetransmitted;
  info.tcpi_dsack_dups = stats.dsackDuplicates;
  info.tcpi_reord_seen = stats.reorderingSeen;
  info.tcpi_snd_wnd = snd.wnd;
  info.tcpi_rcv_wnd = synchronized ? Math.max(0, seqSub(rcv.adv, rcv.nxt)) : 0;
  return info;
}

/**
 * What a socket whose connection is gone reports (Linux: state CLOSE, the tcp_sock's
 * counters kept while the descriptor is open): the state and the connection's counters.
 */
export function closedInfo(stats: ConnectionStats | null): TcpInfo {
  const info = emptyInfo('CLOSED');
  if (stats === null) return info;
  info.tcpi_total_retrans = stats.retransmits;
  info.tcpi_bytes_acked = stats.bytesAcked;
  info.tcpi_bytes_received = stats.bytesReceived;
  info.tcpi_segs_out = stats.segmentsOut;
  info.tcpi_segs_in = stats.segmentsIn;
  info.tcpi_data_segs_in = stats.dataSegmentsIn;
  info.tcpi_data_segs_out = stats.dataSegmentsOut;
  info.tcpi_bytes_sent = stats.bytesSent;
  info.tcpi_bytes_retrans = stats.bytesRetransmitted;
  info.tcpi_dsack_dups = stats.dsackDuplicates;
  info.tcpi_reord_seen = stats.reorderingSeen;
  return info;
}

/** tcpi_min_rtt in µs: RACK's windowed minimum from send times, else the least RTT sample. */
function minRtt(c: Tcb): number {
  const rack = c.rack.minRtt;
  const sampled = c.rtt.minSample;
  const least = rack > 0 ? Math.min(rack, sampled) : sampled;
  return least === Infinity ? NO_MIN_RTT : Math.max(1, us(least));
}

/**
 * tcp_get_info() for a listener: Linux fills only the state, tcpi_reordering and
 * tcpi_snd_cwnd, and aliases tcpi_unacked (connections ready for accept) and tcpi_sacked
 * (the backlog).
 */
export function listenerInfo(backlog: number, readyForAccept: number): TcpInfo {
  const info = emptyInfo('LISTEN');
  info.tcpi_reordering = TCP_REORDERING;
  info.tcpi_snd_cwnd = TCP_INIT_CWND;
  info.tcpi_unacked = readyForAccept;
  info.tcpi_sacked = backlog;
  return info;
}

/**
 * A TIME-WAIT entry keeps only its 4-tuple, sequence numbers, window and timestamp (Linux's
 * inet_timewait_sock has no tcp_info at all: ss shows none): the state and the timestamp
 * option; every other field is 0.
 */
export function timeWaitInfo(tw: TimeWaitEntry): TcpInfo {
  const info = emptyInfo(tw.state);
  if (tw.tsEnabled) info.tcpi_options |= TCPI_OPT_TIMESTAMPS;
  return info;
}
