// TCP's states (RFC 9293 3.3.2) and the events that move a connection between them, as a
// table a student can print (`describeTransitions()`), in the spirit of picoTCP's tcp_fsm[].
// Every state change goes through Tcb.transition(event): the next state is looked up here,
// and a probe hears the old state, the new one and the event (with its RFC section).

export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT';

/** An event that changes the state: what happened, where the rule is, and the moves it makes. */
export interface TcpEvent {
  readonly name: string;
  readonly rfc: string;
  /** From each state the event applies in, the state it leads to. */
  readonly next: Readonly<Partial<Record<TcpState, TcpState>>>;
}

const ANY_TO_CLOSED: Partial<Record<TcpState, TcpState>> = {
  'SYN-SENT': 'CLOSED',
  'SYN-RECEIVED': 'CLOSED',
  ESTABLISHED: 'CLOSED',
  'FIN-WAIT-1': 'CLOSED',
  'FIN-WAIT-2': 'CLOSED',
  'CLOSE-WAIT': 'CLOSED',
  CLOSING: 'CLOSED',
  'LAST-ACK': 'CLOSED',
  'TIME-WAIT': 'CLOSED',
};

function event(name: string, rfc: string, next: Partial<Record<TcpState, TcpState>>): TcpEvent {
  return { name, rfc, next };
}

/** Every event, by name. The order is the order of a connection's life. */
export const TCP_EVENTS = {
  activeOpen: event('OPEN call (active)', 'RFC 9293 3.10.1', { CLOSED: 'SYN-SENT' }),
  synOnListener: event('SYN on a listening port', 'RFC 9293 3.10.7.2', { CLOSED: 'SYN-RECEIVED' }),
  cookieAck: event('ACK carrying a valid SYN cookie', 'RFC 4987 3.6', { CLOSED: 'SYN-RECEIVED' }),
  simultaneousOpen: event('SYN received in SYN-SENT (simultaneous open)', 'RFC 9293 3.10.7.3, fourth', { 'SYN-SENT': 'SYN-RECEIVED' }),
  synAckReceived: event('SYN-ACK acknowledging our SYN', 'RFC 9293 3.10.7.3, fourth', { 'SYN-SENT': 'ESTABLISHED' }),
  synAcked: event('ACK of our SYN', 'RFC 9293 3.10.7.4, fifth', { 'SYN-RECEIVED': 'ESTABLISHED' }),
  closeCall: event('CLOSE call', 'RFC 9293 3.10.4', { ESTABLISHED: 'FIN-WAIT-1', 'CLOSE-WAIT': 'LAST-ACK' }),
  queuedClose: event('CLOSE call queued in SYN-RECEIVED, now ESTABLISHED', 'RFC 9293 3.10.4', { ESTABLISHED: 'FIN-WAIT-1' }),
  finReceived: event('FIN received', 'RFC 9293 3.10.7.4, eighth', {
    ESTABLISHED: 'CLOSE-WAIT',
    'FIN-WAIT-1': 'CLOSING',
    'FIN-WAIT-2': 'TIME-WAIT',
  }),
  finReceivedOurFinAcked: event('FIN received, our FIN acknowledged', 'RFC 9293 3.10.7.4, eighth', { 'FIN-WAIT-1': 'TIME-WAIT' }),
  finAcked: event('ACK of our FIN', 'RFC 9293 3.10.7.4, fifth', {
    'FIN-WAIT-1': 'FIN-WAIT-2',
    CLOSING: 'TIME-WAIT',
    'LAST-ACK': 'CLOSED',
  }),
  resetReceived: event('RST received', 'RFC 9293 3.10.7.4, second (RFC 5961 3.2)', ANY_TO_CLOSED),
  refused: event('RST or ICMP unreachable answering our SYN', 'RFC 9293 3.10.7.3, RFC 1122 4.2.3.9', {
    'SYN-SENT': 'CLOSED',
    'SYN-RECEIVED': 'CLOSED',
  }),
  synInSynReceived: event('SYN in a passive SYN-RECEIVED: back to LISTEN', 'RFC 9293 3.10.7.4, fourth', { 'SYN-RECEIVED': 'CLOSED' }),
  closeInSynSent: event('CLOSE call in SYN-SENT', 'RFC 9293 3.10.4', { 'SYN-SENT': 'CLOSED' }),
  abortCall: event('ABORT call', 'RFC 9293 3.10.5', ANY_TO_CLOSED),
  dataAfterClose: event('data for a socket the application closed: reset', 'RFC 2525 2.17', ANY_TO_CLOSED),
  retransmitLimit: event('retransmission limit reached', 'RFC 9293 3.8.3, RFC 1122 4.2.3.5', ANY_TO_CLOSED),
  probeLimit: event('zero-window probes unanswered (Linux tcp_probe_timer)', 'RFC 1122 4.2.2.17', ANY_TO_CLOSED),
  outOfResources: event('orphan reset: too many orphans or out of memory (Linux tcp_out_of_resources)', 'RFC 9293 3.10.5', ANY_TO_CLOSED),
  keepAliveLimit: event('keepalive probes unanswered', 'RFC 1122 4.2.3.6', ANY_TO_CLOSED),
  timeWaitTimeout: event('2*MSL in TIME-WAIT elapsed', 'RFC 9293 3.10.8', { 'TIME-WAIT': 'CLOSED' }),
  finWait2Timeout: event('orphaned FIN-WAIT-2 timed out (Linux tcp_fin_timeout)', 'RFC 9293 3.10.8', { 'FIN-WAIT-2': 'CLOSED' }),
  timeWaitOverflow: event('TIME-WAIT skipped, the table full (Linux tcp_max_tw_buckets)', 'RFC 9293 3.10.8', { 'TIME-WAIT': 'CLOSED' }),
  timeWaitReused: event('new SYN reuses a TIME-WAIT connection', 'RFC 6191 2', { 'TIME-WAIT': 'CLOSED' }),
  listenerGone: event('listener closed before accept', 'RFC 9293 3.10.4', ANY_TO_CLOSED),
  stackClosed: event('stack closed', 'RFC 9293 3.10.5', ANY_TO_CLOSED),
} as const;

export type TcpEventName = keyof typeof TCP_EVENTS;

/** The state x event table as lines of text: `FROM --event (RFC)--> TO`. */
export function describeTransitions(): string[] {
  const lines: string[] = [];
  for (const e of Object.values(TCP_EVENTS)) {
    for (const [from, to] of Object.entries(e.next)) lines.push(`${from.padEnd(12)} --${e.name} (${e.rfc})--> ${to}`);
  }
  return lines;
}

/** States after the handshake (RFC 9293 3.3.2: "synchronized states"). */
export function isSynchronized(s: TcpState): boolean {
  return s !== 'CLOSED' && s !== 'LISTEN' && s !== 'SYN-SENT' && s !== 'SYN-RECEIVED';
}

/** States in which new data (and our FIN) may go out. */
export function canSendData(s: TcpState): boolean {
  return s === 'ESTABLISHED' || s === 'CLOSE-WAIT' || s === 'FIN-WAIT-1' || s === 'LAST-ACK' || s === 'CLOSING';
}

/** States in which our FIN is queued and may be sent. */
export function finAllowed(s: TcpState): boolean {
  return s === 'FIN-WAIT-1' || s === 'LAST-ACK' || s === 'CLOSING';
}
