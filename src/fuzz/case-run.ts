// One fuzz case on one target: the remote's side of the conversation. Each step (a socket
// call, a crafted segment, time passing) goes to the target, every segment the target sends
// is checked by the oracle, noted in the remote's model and written into the case's script.

import { parseScript, type SyscallLine, type TcpOption } from '../drill/parse.ts';
import type { TcpState } from '../tcp/state.ts';
import { ACK, SYN } from '../tcp/tcp-segment.ts';
import { RemoteModel, seqAdd, seqDiff, seqLe, seqLt } from './model.ts';
import { ackOfUnsentDataDropsSegment, dataDeliveredOnceInOrder, INBOUND_RULES, type InboundContext, OUTBOUND_RULES, type Violation } from './oracle.ts';
import { ScriptRecorder } from './script.ts';
import { type FuzzTarget, type OutboundSegment, type PacketLine, SERVER_PORT, type SyscallOutcome } from './target.ts';

/** How a case begins: who opens, with which SYN options and window, and whether the handshake completes. */
export interface Opening {
  mode: 'passive' | 'active';
  mss: number;
  wscale: number | null;
  sackOK: boolean;
  ts: boolean;
  win: number;
  complete: boolean;
}

export type SeqMode = 'next' | 'old' | 'inWindow' | 'beyond' | 'hole' | 'duplicate' | 'random';
export type AckMode = 'ackable' | 'una' | 'between' | 'unsent' | 'tooOld' | 'random';

export interface SegmentSpec {
  kind: 'segment';
  flags: string;
  seqMode: SeqMode;
  seqDelta: number;
  ackMode: AckMode;
  ackDelta: number;
  length: number;
  win: number;
  sack: boolean;
  synOptions: boolean;
}

export type Step =
  | SegmentSpec
  | { kind: 'write'; size: number }
  | { kind: 'read'; size: number }
  | { kind: 'shutdown'; how: 'SHUT_WR' | 'SHUT_RD' | 'SHUT_RDWR' }
  | { kind: 'close' }
  | { kind: 'closeListener' }
  | { kind: 'accept' }
  | { kind: 'advance'; ms: number }
  /** The remote pretends the target's last data segment was lost: its ACKs stop short of it. */
  | { kind: 'drop' }
  /** The remote opens a new connection (a SYN from a new ISN) once the old one is gone. */
  | { kind: 'reopen' };

/** A rule broken: the run stops here and the case's script ends with the rule's expected line. */
export class FuzzFailure extends Error {
  constructor(
    readonly violation: Violation,
    readonly at: number,
  ) {
    super(`${violation.rule} (${violation.rfc}): ${violation.message}`);
  }
}

/** The state a (state, event) coverage pair names before a step. */
export function stateName(state: TcpState | null, listening: boolean): string {
  if (state && state !== 'CLOSED') return state;
  return listening ? 'LISTEN' : 'CLOSED';
}

/** The event a step is for coverage: the segment's kind, the call's name, or a timeout. */
export function eventName(step: Step): string {
  switch (step.kind) {
    case 'segment': {
      const f = step.flags;
      if (f.includes('R')) return 'RST';
      if (f.includes('S')) return f.includes('.') ? 'SYN-ACK' : 'SYN';
      if (f.includes('F')) return 'FIN';
      if (step.length > 0) return 'data';
      return f.includes('.') ? 'ACK' : 'no-flags';
    }
    case 'reopen':
      return 'SYN';
    case 'advance':
      return 'timeout';
    case 'closeListener':
      return 'close';
    default:
      return step.kind;
  }
}

function syscallLine(text: string, result: number): SyscallLine {
  const e = parseScript(`0 ${text} = ${result}`).events[0]!;
  return e.action as SyscallLine;
}

export class CaseRun {
  readonly model = new RemoteModel();
  readonly script = new ScriptRecorder();
  private listenFd: number | null = null;
  private connFd: number | null = null;
  /** The descriptor of the connection the model describes (reads on another are not checked). */
  private modelFd: number | null = null;
  private nextFd = 3;
  /** Rules whose violations are already reported: noted, not thrown, so the run looks for others. */
  constructor(
    readonly target: FuzzTarget,
    private readonly coverage: Set<string>,
    private readonly ignored: ReadonlySet<string> = new Set(),
  ) {}

  /** The target's segments of the last step, for the differential oracle. */
  /** This step's replies, each at its time since the action that drew it (noteReplies). */
  lastReplies: OutboundSegment[] = [];

  /** Whether this run broke a rule (its script ends with the expected line). */
  failed = false;

  private fail(v: Violation, at: number): void {
    if (this.ignored.has(v.rule)) return;
    this.failed = true;
    this.script.violation(at, v);
    throw new FuzzFailure(v, at);
  }

  /**
   * Replies for the differential oracle, their times counted from the call or segment that
   * drew them: two targets' clocks share no origin (a kernel's calls take real time).
   */
  private noteReplies(segments: OutboundSegment[]): void {
    for (const seg of segments) this.lastReplies.push({ ...seg, at: seg.at - this.actionAt });
  }

  /** When the last call, segment or time step began on the target (ms). */
  private actionAt = 0;

  /** Takes what the target sent, checks each segment, notes it. */
  private async observe(): Promise<OutboundSegment[]> {
    const segments = await this.target.takeOutbound();
    for (const s of segments) this.checkOutbound(s);
    this.noteReplies(segments);
    return segments;
  }

  private checkOutbound(s: OutboundSegment): void {
    for (const rule of OUTBOUND_RULES) {
      const v = rule({ model: this.model, segment: s });
      if (v) {
        // The segments before this one are in the script already; this one is replaced by the expected line.
        this.fail(v, s.at);
      }
    }
    this.script.outbound(s);
    this.model.noteOutbound(s);
  }

  private async call(text: string, expected = 0): Promise<SyscallOutcome> {
    const line = syscallLine(text, expected);
    const at = this.target.now();
    this.actionAt = this.target.now();
    const outcome = await this.target.syscall(line);
    this.script.syscall(at, text, outcome);
    await this.observe();
    return outcome;
  }

  private async callChecked(text: string, expected: number, fd: number, length: number): Promise<SyscallOutcome> {
    const line = syscallLine(text, expected);
    const at = this.target.now();
    this.actionAt = this.target.now();
    const outcome = await this.target.syscall(line);
    const v = fd === this.modelFd ? dataDeliveredOnceInOrder(this.model, line, outcome, fd, length) : null;
    if (v) this.fail(v, at);
    this.script.syscall(at, text, outcome);
    if (outcome.ret > 0) this.model.bytesRead += outcome.ret;
    await this.observe();
    return outcome;
  }

  private synOptions(o: Opening, ecr: number): TcpOption[] {
    const opts: TcpOption[] = [{ kind: 'mss', value: o.mss }];
    if (o.sackOK) opts.push({ kind: 'sackOK' });
    if (o.ts) opts.push({ kind: 'TS', val: this.model.nextTimestamp().val, ecr });
    if (o.wscale !== null) opts.push({ kind: 'nop' }, { kind: 'wscale', value: o.wscale });
    return opts;
  }

  private rememberSynOffer(o: Opening): void {
    this.model.maxRemoteWnd = Math.max(this.model.maxRemoteWnd, o.win);
  }

  async open(o: Opening): Promise<void> {
    this.opening = o;
    const fd = this.nextFd++;
    await this.call(`socket(..., SOCK_STREAM, IPPROTO_TCP)`, fd);
    await this.call(`fcntl(${fd}, F_SETFL, O_RDWR|O_NONBLOCK)`);
    if (o.mode === 'passive') {
      this.listenFd = fd;
      await this.call(`bind(${fd}, ..., ...)`);
      await this.call(`listen(${fd}, 1)`);
      await this.sendSyn(o, 0);
      if (o.complete) {
        await this.sendRaw({ flags: '.', start: 1, length: 0, ack: 1, win: o.win }, true);
        await this.accept();
      }
    } else {
      this.connFd = fd;
      this.modelFd = fd;
      await this.call(`connect(${fd}, ..., ...)`, -1);
      if (o.complete && this.model.targetSynSeen) {
        this.rememberSynOffer(o);
        const ecr = this.model.lastTargetTsVal ?? 0;
        await this.sendRaw({ flags: 'S.', start: 0, length: 0, ack: 1, win: o.win, options: this.synOptions(o, ecr) }, false);
        this.model.una = 1;
      }
    }
  }

  private opening: Opening | null = null;

  private async sendSyn(o: Opening, isn: number): Promise<void> {
    this.rememberSynOffer(o);
    await this.sendRaw({ flags: 'S', start: isn, length: 0, ack: null, win: o.win, options: this.synOptions(o, 0) }, false);
  }

  private async accept(): Promise<void> {
    if (this.listenFd === null) return;
    const fd = this.nextFd;
    const out = await this.call(`accept(${this.listenFd}, ..., ...)`, fd);
    if (out.ret === fd) {
      this.nextFd++;
      this.connFd = fd;
      this.modelFd = fd;
      await this.call(`fcntl(${fd}, F_SETFL, O_RDWR|O_NONBLOCK)`);
    }
  }

  /** Sends one segment from the remote, with the TS option when timestamps are on. */
  private async sendRaw(seg: { flags: string; start: number; length: number; ack: number | null; win: number; options?: TcpOption[] }, addTs: boolean): Promise<void> {
    const options = [...(seg.options ?? [])];
    if (addTs && this.model.tsOk && !options.some((o) => o.kind === 'TS')) options.unshift({ kind: 'nop' }, { kind: 'nop' }, this.model.nextTimestamp());
    const p: PacketLine = {
      type: 'packet',
      direction: '<',
      flags: seg.flags,
      start: seg.start >>> 0,
      end: seqAdd(seg.start, seg.length),
      length: seg.length,
      ack: seg.ack === null ? null : seg.ack >>> 0,
      win: seg.win,
      urg: null,
      options: options.length > 0 ? options : null,
      ports: null,
      extras: [],
    };
    await this.observe();
    const before = await this.target.info();
    const m = this.model;
    const rcvNxt = m.lastTargetAck !== null && m.lastTargetAck === m.contiguousEnd() ? m.lastTargetAck : null;
    const at = this.target.now();
    this.script.inbound(at, p);
    this.actionAt = this.target.now();
    await this.target.inject(p);
    const replies = await this.target.takeOutbound();
    const unsynchronized = before.state === null || before.state === 'CLOSED' || before.state === 'LISTEN' || before.state === 'SYN-SENT';
    // A plain SYN in TIME-WAIT may open a new connection too (RFC 6191, Linux tcp_timewait_state_process).
    const reuse = before.state === 'TIME-WAIT' && !p.flags.includes('.');
    const opensAnew = p.flags.includes('S') && !p.flags.includes('R') && (unsynchronized || reuse);
    const ctx: InboundContext = { model: m, segment: p, state: before.state, listening: before.listening, toListenerPort: true, rcvNxt, replies, now: at };
    if (this.opening?.mode === 'active') ctx.toListenerPort = false;
    for (const rule of INBOUND_RULES) {
      const v = rule(ctx);
      if (v) {
        // The replies that came are written first; the expected line follows them.
        for (const s of replies) this.script.outbound(s);
        this.fail(v, at);
      }
    }
    const after = await this.target.info();
    const dropped = ackOfUnsentDataDropsSegment(ctx, before.bytesReceived, after.bytesReceived);
    if (dropped) {
      for (const s of replies) this.script.outbound(s);
      this.fail(dropped, at);
    }
    // The target's out-of-window ACK limit may be taken by any ACK it sends at once: assumed so,
    // which makes the oracle demand less rather than demand an ACK the limit rightly held back.
    if (replies.some((s) => s.flags === ACK && s.payloadLength === 0)) m.lastOowAckAt = at;
    // A SYN where there is no connection opens a new one (a listener's, or a simultaneous open's).
    // TIME-WAIT may answer the SYN with an ACK instead (an old SYN): then it is still the old connection.
    const reopened = opensAnew && (!reuse || replies.some((s) => (s.flags & (SYN | ACK)) === (SYN | ACK)));
    if (opensAnew && before.state === 'SYN-SENT') m.restartRemote(p.start >>> 0);
    else if (reopened && m.synSent) {
      m.newConnection(p.start >>> 0);
      // The old descriptor keeps the old connection's bytes: the model is the new one's.
      this.modelFd = null;
    }
    this.noteAcceptedAck(p);
    m.noteInbound(p, at);
    for (const s of replies) this.checkOutbound(s);
    this.noteReplies(replies);
  }

  /** SND.UNA and MAX.SND.WND move with an ACK the target surely took (seq in its window, ack in range). */
  private noteAcceptedAck(p: PacketLine): void {
    const m = this.model;
    if (!p.flags.includes('.') || p.flags.includes('R') || p.flags.includes('S') || p.ack === null) return;
    if (m.lastTargetAck === null || m.rightEdge === null) return;
    const inWindow = seqLe(m.lastTargetAck, p.start) && seqLe(p.start, m.rightEdge);
    if (!inWindow) return;
    if (seqLe(m.una, p.ack) && seqLe(p.ack, m.targetMax)) m.una = p.ack;
    m.maxRemoteWnd = Math.max(m.maxRemoteWnd, (p.win ?? 0) * 2 ** m.remoteWscale);
  }

  private resolveSeq(spec: SegmentSpec): number {
    const m = this.model;
    const d = spec.seqDelta;
    switch (spec.seqMode) {
      case 'next':
        return m.sndNxt;
      case 'old':
        return (m.sndNxt - 1 - (d % 3000)) >>> 0;
      case 'inWindow': {
        const room = m.rightEdge !== null ? seqDiff(m.rightEdge, m.sndNxt) - spec.length : 1000;
        return seqAdd(m.sndNxt, 1 + (room > 1 ? d % room : 0));
      }
      case 'beyond':
        return seqAdd(m.rightEdge ?? seqAdd(m.sndNxt, 65535), 1 + (d % 100_000));
      case 'hole': {
        const end = m.contiguousEnd();
        return seqLt(end, m.maxSent()) ? end : m.sndNxt;
      }
      case 'duplicate': {
        const data = m.sent.filter(([s, e]) => seqDiff(e, s) > 1);
        if (data.length === 0) return m.sndNxt;
        const [s, e] = data[d % data.length]!;
        return seqAdd(s, d % seqDiff(e, s));
      }
      case 'random':
        return Math.imul(d + 1, 2654435761) >>> 0;
    }
  }

  private resolveAck(spec: SegmentSpec): number {
    const m = this.model;
    const d = spec.ackDelta;
    switch (spec.ackMode) {
      case 'ackable':
        return m.ackable;
      case 'una':
        return m.una;
      case 'between': {
        const span = seqDiff(m.ackable, m.una);
        return seqAdd(m.una, span > 0 ? d % (span + 1) : 0);
      }
      case 'unsent':
        return seqAdd(m.targetMax, 1 + (d % 5000));
      case 'tooOld':
        return (m.una - m.maxRemoteWnd - 2 - (d % 100_000)) >>> 0;
      case 'random':
        return Math.imul(d + 7, 2246822519) >>> 0;
    }
  }

  async step(step: Step): Promise<void> {
    this.lastReplies = [];
    const info = await this.target.info();
    this.coverage.add(`${stateName(info.state, info.listening)}:${eventName(step)}`);
    const conn = this.connFd ?? 3;
    switch (step.kind) {
      case 'segment': {
        const options: TcpOption[] = [];
        if (step.synOptions && step.flags.includes('S') && this.opening) options.push(...this.synOptions(this.opening, this.model.lastTargetTsVal ?? 0));
        // SYN-only options on other segments: a receiver ignores them (RFC 9293 3.2, RFC 7323 2.2).
        else if (step.synOptions) options.push({ kind: 'mss', value: 536 }, { kind: 'sackOK' }, { kind: 'nop' }, { kind: 'wscale', value: 14 });
        if (step.sack && this.model.sackOk) {
          const m = this.model;
          const left = seqAdd(m.una, 1);
          if (seqLt(left, m.targetMax)) options.push({ kind: 'nop' }, { kind: 'nop' }, { kind: 'sack', blocks: [[left, m.targetMax]] });
        }
        const ack = step.flags.includes('.') ? this.resolveAck(step) : null;
        await this.sendRaw({ flags: step.flags, start: this.resolveSeq(step), length: step.length, ack, win: step.win, options }, true);
        return;
      }
      case 'write':
        await this.call(`write(${conn}, ..., ${step.size})`);
        return;
      case 'read':
        await this.callChecked(`read(${conn}, ..., ${step.size})`, 0, conn, step.size);
        return;
      case 'shutdown':
        await this.call(`shutdown(${conn}, ${step.how})`);
        if (step.how !== 'SHUT_WR') this.model.readShut = true;
        return;
      case 'close':
        if (this.connFd === null) return;
        await this.call(`close(${this.connFd})`);
        this.connFd = null;
        this.model.readShut = true;
        return;
      case 'closeListener':
        if (this.listenFd === null) return;
        await this.call(`close(${this.listenFd})`);
        this.listenFd = null;
        return;
      case 'accept':
        await this.accept();
        return;
      case 'advance':
        this.actionAt = this.target.now();
        await this.target.advance(step.ms);
        await this.observe();
        return;
      case 'drop': {
        // What the remote acks stops at the start of the target's last data: that segment was "lost".
        const m = this.model;
        const last = [...m.sentAt.keys()].filter((s) => seqLt(s, m.targetMax)).sort((a, b) => seqDiff(b, a))[0];
        if (last !== undefined && seqLe(m.una, last)) m.ackable = last;
        return;
      }
      case 'reopen': {
        if (this.opening?.mode !== 'passive' || (info.state !== null && info.state !== 'CLOSED')) return;
        const isn = this.model.newConnection();
        this.connFd = null;
        this.modelFd = null;
        await this.sendSyn(this.opening, isn);
        await this.sendRaw({ flags: '.', start: seqAdd(isn, 1), length: 0, ack: 1, win: this.opening.win }, true);
        await this.accept();
        return;
      }
    }
  }
}

export { SERVER_PORT };
