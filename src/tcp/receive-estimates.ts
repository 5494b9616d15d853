// What the receiver estimates of its peer, as Linux does for tcp_info and its own window
// tuning: the peer's segment size (tcp_measure_rcv_mss, icsk_ack.rcv_mss), the round-trip
// time seen from the receiving side (tcp_rcv_rtt_measure and tcp_rcv_rtt_measure_ts,
// tcpi_rcv_rtt), and the data the application took per such RTT (tcp_rcv_space_adjust,
// tcpi_rcv_space). The stack's window does not follow them (it offers its whole buffer):
// they are measured so that tcp_info reports what Linux would. This file holds what is kept;
// receive-measure.ts measures it.

/** Linux TCP_MSS_DEFAULT: the peer's segment size assumed before data shows it. */
export const TCP_MSS_DEFAULT = 536;

export class ReceiveEstimates {
  /** The peer's segment size as seen (Linux icsk_ack.rcv_mss). */
  mss = TCP_MSS_DEFAULT;
  /** Payload of the last short segment (icsk_ack.last_seg_size): two alike make an MSS. */
  lastSegmentSize = 0;
  /** In-order data has arrived (Linux sets icsk_ack.ato then). */
  dataSeen = false;
  /** Receive RTT in microseconds times 8, 0 before a sample (tp->rcv_rtt_est.rtt_us). */
  rttUs8 = 0;
  /** The window being timed without timestamps: its end and when it began (-1: none). */
  rttSeq = 0;
  rttTime = -1;
  /** The last echoed timestamp that gave a sample (tp->rcv_rtt_last_tsecr). */
  rttLastTsecr = 0;
  /** Bytes the application took in one receive RTT, at most so far (tp->rcvq_space). */
  space = 0;
  spaceSeq = 0;
  spaceTime = 0;
}

