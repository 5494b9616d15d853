// Reading a saved trace (JSON lines, schema.ts) back: `tapstack plot`, `tapstack show` and the
// tests share it. Unknown record types are skipped (the format may grow); a line that is not
// a record, or a known record without what the readers use, is an error naming its line.

import { TRACE_RECORD_TYPES, type TraceRecord } from './schema.ts';

/** A trace that cannot be read: the message names the file and, for a bad line, its number. */
export class TraceFileError extends Error {}

const KNOWN_TYPES = new Set<string>(TRACE_RECORD_TYPES);

type Json = Record<string, unknown>;
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isString = (v: unknown): v is string => typeof v === 'string';

/**
 * What a record of a known type must hold for the charts to read it; null when it does.
 * The format may grow (schema.ts): other fields and other record types are ignored.
 */
function recordProblem(r: Json): string | null {
  if (!isNumber(r.t)) return 'no time (t)';
  switch (r.type) {
    case 'frame': {
      if (r.dir !== 'in' && r.dir !== 'out') return "a frame's dir is 'in' or 'out'";
      if (r.tcp === undefined) return null;
      const tcp = r.tcp as Json;
      if (typeof tcp !== 'object' || tcp === null) return 'tcp is not an object';
      if (tcp.conn !== null && !isString(tcp.conn)) return 'tcp.conn is not a connection id';
      for (const k of ['rseq', 'rack', 'len', 'winBytes'] as const) if (!isNumber(tcp[k])) return `tcp.${k} is not a number`;
      if (!isString(tcp.flags)) return 'tcp.flags is not a string';
      if (!Array.isArray(tcp.sack) || !tcp.sack.every((b) => Array.isArray(b) && b.length === 2 && isNumber(b[0]) && isNumber(b[1])))
        return 'tcp.sack is not a list of [left, right]';
      if (typeof tcp.retransmit !== 'boolean') return 'tcp.retransmit is not a boolean';
      return null;
    }
    case 'cc': {
      if (!isString(r.conn) || !isNumber(r.cwnd) || !(r.ssthresh === null || isNumber(r.ssthresh)) || !isString(r.phase)) return 'a cc record needs conn, cwnd, ssthresh, phase';
      if (!isNumber(r.mss) || r.mss <= 0) return 'a cc record needs a positive mss';
      const prev = r.prev as Json | undefined;
      if (typeof prev !== 'object' || prev === null || !isNumber(prev.cwnd)) return 'a cc record needs prev.cwnd';
      return null;
    }
    case 'rtt':
      if (!isString(r.conn) || !isNumber(r.srttUs) || !isNumber(r.rtoUs)) return 'an rtt record needs conn, srttUs, rtoUs';
      if (r.sampleUs !== undefined && !isNumber(r.sampleUs)) return 'sampleUs is not a number';
      return null;
    case 'state':
      return isString(r.conn) && isString(r.from) && isString(r.to) ? null : 'a state record needs conn, from, to';
    default:
      return null;
  }
}

/**
 * The records of a JSON-lines trace, those of types this version knows (others skipped).
 * Blank lines are allowed, and a cut-off last line is left out; a line that is not a JSON
 * object, or a known record missing what the charts read, is an error naming the line.
 */
export function parseTrace(text: string, name: string): TraceRecord[] {
  const records: TraceRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      // A trace still being written (--trace-file while the stack runs) may end in half a
      // line: the last line without its newline is left out, as tcpdump -r takes a capture
      // cut short up to its last whole packet.
      if (i === lines.length - 1) break;
      throw new TraceFileError(`${name}:${i + 1}: not JSON (${(err as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !isString((value as Json).type))
      throw new TraceFileError(`${name}:${i + 1}: not a trace record (an object with a "type")`);
    const r = value as Json;
    if (!KNOWN_TYPES.has(r.type as string)) continue;
    const problem = recordProblem(r);
    if (problem) throw new TraceFileError(`${name}:${i + 1}: bad ${r.type as string} record: ${problem}`);
    records.push(r as unknown as TraceRecord);
  }
  return records;
}
