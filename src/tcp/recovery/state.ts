// What loss recovery remembers between ACKs (RFC 5681 3.2, RFC 6582, RFC 6675, RFC 8985 7).

export class RecoveryState {
  /** Duplicate ACKs in a row (RFC 5681 2). */
  dupAcks = 0;
  inRecovery = false;
  /** The current recovery is SACK-based (RFC 6675), not NewReno (RFC 6582). */
  sackRecovery = false;
  /**
   * The recovery follows a retransmission timeout with SACK information kept (RFC 6675 5.1,
   * Linux's CA_Loss): every unSACKed byte is lost, cwnd grows by slow start.
   */
  afterTimeout = false;
  /** RFC 6582 "recover": highest sequence number sent when recovery started. */
  recover = 0;
  /** RFC 6675 HighRxt: the end of the highest byte retransmitted in this recovery. */
  highRxt = 0;
  /** SND.MAX when we last retransmitted: SACKs beyond it come from data sent afterwards. */
  retransmitMark = 0;
  /** Out-parameter of SackScoreboard.nextLost (one array, no allocation per call). */
  readonly nextSegStart = [0];
  /** Bytes the current ACK delivered, cumulatively or by SACK (RFC 6937 DeliveredData). */
  delivered = 0;
  /** PRR (RFC 6937): data delivered and sent since recovery began, and FlightSize then. */
  prrDelivered = 0;
  prrOut = 0;
  recoverFs = 1;
  /** Tail loss probe (RFC 8985 7): outstanding, and the probe's range. */
  tlpOutstanding = false;
  tlpStart = 0;
  tlpEnd = 0;
}
