// A fuzz case as a packetdrill script, in the syntax src/drill/parse.ts reads: the socket
// calls with the results the target gave, the remote's segments, the target's segments as
// observed, each at its absolute time; at a violation, the line the rule expected, so that
// `tapstack drill --target stack FILE` fails at that line as the fuzzer did.

import { formatOptions, lettersFromFlags } from '../drill/wire.ts';
import { ACK } from '../tcp/tcp-segment.ts';
import type { Violation } from './oracle.ts';
import type { OutboundSegment, PacketLine, SyscallOutcome } from './target.ts';

/** The strerror text packetdrill scripts write after an errno. */
const ERRNO_TEXT: Record<string, string> = {
  EAGAIN: 'Resource temporarily unavailable',
  EINPROGRESS: 'Operation now in progress',
  ECONNRESET: 'Connection reset by peer',
  ECONNREFUSED: 'Connection refused',
  EPIPE: 'Broken pipe',
  ENOTCONN: 'Transport endpoint is not connected',
  EBADF: 'Bad file descriptor',
  ETIMEDOUT: 'Connection timed out',
  EISCONN: 'Transport endpoint is already connected',
  EALREADY: 'Operation already in progress',
};

export function formatTime(ms: number): string {
  return (ms / 1000).toFixed(6);
}

export function formatInbound(p: PacketLine): string {
  const ack = p.ack !== null ? ` ack ${p.ack >>> 0}` : '';
  return `< ${p.flags === '' ? '-' : p.flags} ${p.start >>> 0}:${p.end >>> 0}(${p.length})${ack} win ${p.win ?? 65535}${formatOptions(p.options)}`;
}

export function formatOutbound(s: OutboundSegment): string {
  const end = (s.seq + s.payloadLength) >>> 0;
  const ack = s.flags & ACK ? ` ack ${s.ack}` : '';
  return `> ${lettersFromFlags(s.flags)} ${s.seq}:${end}(${s.payloadLength})${ack} win ${s.window}${formatOptions(s.options)}`;
}

/** A call as the script writes it: its text up to ` = `, then the result the target gave. */
export function formatSyscall(callText: string, outcome: SyscallOutcome): string {
  if (outcome.errno) return `${callText} = ${outcome.ret} ${outcome.errno} (${ERRNO_TEXT[outcome.errno] ?? outcome.errno})`;
  return `${callText} = ${outcome.ret}`;
}

export interface ScriptHeader {
  seed: number;
  path: string | null;
  target: string;
  sysctls: Record<string, number>;
}

/** The lines of one case as it runs. */
export class ScriptRecorder {
  private readonly lines: { at: number; text: string }[] = [];
  private violationText: string[] = [];

  inbound(at: number, p: PacketLine): void {
    this.lines.push({ at, text: formatInbound(p) });
  }
  outbound(s: OutboundSegment): void {
    this.lines.push({ at: s.at, text: formatOutbound(s) });
  }
  syscall(at: number, callText: string, outcome: SyscallOutcome): void {
    this.lines.push({ at, text: formatSyscall(callText, outcome) });
  }
  comment(text: string): void {
    this.lines.push({ at: -1, text: `// ${text}` });
  }

  /** The rule's expected line at `at` (or at the time the rule states with an `@ms ` prefix). */
  violation(at: number, v: Violation): void {
    this.violationText = [`// violated: ${v.rule} (${v.rfc}): ${v.message}`];
    if (v.expectedLine === null) {
      this.violationText.push('// (no script line can state what the rule expected: the replay passes here)');
      return;
    }
    let line = v.expectedLine;
    let when = at;
    const m = /^@(\d+(?:\.\d+)?) (.*)$/.exec(line);
    if (m) {
      when = Number(m[1]);
      line = m[2]!;
    }
    this.violationText.push(`${formatTime(when)} ${line}`);
  }

  /** The number of events (packet lines and calls) in the case. */
  get events(): number {
    return this.lines.filter((l) => l.at >= 0).length;
  }

  render(header: ScriptHeader, violation: Violation): string {
    const out = [
      `// Found by tapstack fuzz --target ${header.target} --seed ${header.seed}${header.path ? ` (fast-check path ${header.path})` : ''}.`,
      `// Rule: ${violation.rule} (${violation.rfc}).`,
      `// Replay: tapstack drill --target stack FILE (fails at the last line, as the fuzzer saw).`,
    ];
    const settings = Object.entries(header.sysctls);
    if (settings.length > 0) out.push(`\`${settings.map(([k, v]) => `sysctl -q net.ipv4.${k}=${v}`).join('; ')}\``);
    for (const l of this.lines) out.push(l.at < 0 ? l.text : `${formatTime(l.at)} ${l.text}`);
    out.push(...this.violationText);
    return out.join('\n') + '\n';
  }
}
