// The differential oracle: the same step on two targets should draw the same replies, once
// normalised (target.ts OutboundSegment: ISN-relative seq, the remote's own ack space). Only
// flags, sequence range and ack are compared: windows, options and TS values are each host's
// own choice, and times may differ by FUZZ_TIMING_TOLERANCE_MS (a kernel runs in real time).

import { lettersFromFlags } from '../drill/wire.ts';
import { ACK } from '../tcp/tcp-segment.ts';
import type { Violation } from './oracle.ts';
import { formatOutbound } from './script.ts';
import { FUZZ_TIMING_TOLERANCE_MS, type OutboundSegment } from './target.ts';

function signature(s: OutboundSegment): string {
  return `${lettersFromFlags(s.flags)} ${s.seq}:${(s.seq + s.payloadLength) >>> 0}(${s.payloadLength})${s.flags & ACK ? ` ack ${s.ack}` : ''}`;
}

/** The first difference between two targets' replies to one step, as a violation of the first target. */
export function differenceOf(nameA: string, a: OutboundSegment[], nameB: string, b: OutboundSegment[], toleranceMs = FUZZ_TIMING_TOLERANCE_MS): Violation | null {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    const sameShape = x && y && signature(x) === signature(y);
    if (sameShape && Math.abs(x.at - y.at) <= toleranceMs) continue;
    const what = !x ? `${nameA} sent nothing, ${nameB} sent ${signature(y!)}` : !y ? `${nameA} sent ${signature(x)}, ${nameB} nothing` : sameShape ? `${signature(x)} at ${x.at} ms on ${nameA}, ${y.at} ms on ${nameB}` : `${nameA} sent ${signature(x)}, ${nameB} sent ${signature(y)}`;
    return { rule: 'differential', rfc: `${nameA} and ${nameB} agree`, message: `reply ${i + 1} differs: ${what}`, expectedLine: y ? formatOutbound(y).replace(/ win \d+.*$/, ' <...>') : null };
  }
  return null;
}
