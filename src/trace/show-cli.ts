// `tapstack show TRACE.jsonl [FILTER]`: a saved trace (JSON lines) read back as the text
// trace, as `tcpdump -r FILE [expression]` reads a capture. Record once with
// `--trace-format json` (what the page and `tapstack plot` read), read it as text, filtered
// by the same language as --trace.

import { readFileSync } from 'node:fs';
import { parseIpv4 } from '../ipv4/address.ts';
import { compileFilter, LAYER_PROTOS, PROTO_BIT, type Subject, TraceFilterError } from './filter.ts';
import { formatRecord } from './format-text.js';
import { parseTrace, TraceFileError } from './read.ts';
import type { TraceRecord } from './schema.ts';

export const SHOW_USAGE = `usage: tapstack show TRACE.jsonl [FILTER] [--colour on|off]
  TRACE.jsonl         a trace written by --trace-format json (one record per line)
  FILTER              as --trace's: 'tcp port 80', 'host 10.0.0.1 and not arp', ...
  --colour on|off     ANSI colour (default: on a terminal, unless NO_COLOR is set)
  -h, --help`;

class ShowUsageError extends Error {}

const CONN_ID = /^(\d+\.\d+\.\d+\.\d+):(\d+)>(\d+\.\d+\.\d+\.\d+):(\d+)$/;
const QUOTED = /^(tcp|udp|icmp|proto \d+) (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))? > (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))?/;
const QUOTED_PROTOS: Readonly<Record<string, number>> = { tcp: PROTO_BIT.tcp, udp: PROTO_BIT.udp, icmp: PROTO_BIT.icmp };

const address = (text: string | null | undefined): number | null => (text == null ? null : parseIpv4(text));
const port = (text: string | undefined): number | null => (text === undefined ? null : Number(text));

/** A connection's events are about both its ends, either way (as the live tracer's connSubject). */
function connSubject(conn: string): Subject | null {
  const m = CONN_ID.exec(conn);
  if (!m) return null;
  return { protos: LAYER_PROTOS.tcp!, src: address(m[1]), sport: port(m[2]), dst: address(m[3]), dport: port(m[4]), eitherWay: true };
}

/**
 * What a saved record is about, for the filter, as the live tracer decides it (tracer.ts):
 * frames by their own headers, TCP events by their connection, ARP by its address, ICMP
 * errors by the datagram they quote. Null: the record has no subject of its own (meta, and a
 * drop, which belongs to the frame before it at the same time).
 */
export function recordSubject(r: TraceRecord): Subject | null {
  switch (r.type) {
    case 'frame': {
      const ports = r.tcp ?? r.udp;
      return { protos: LAYER_PROTOS[r.proto] ?? PROTO_BIT.ethernet, src: address(r.src), dst: address(r.dst), sport: ports?.sport ?? null, dport: ports?.dport ?? null, eitherWay: false };
    }
    case 'state':
    case 'retransmit':
    case 'cc':
    case 'rtt':
    case 'probe':
      return connSubject(r.conn);
    case 'arp': {
      const ip = address(r.ip);
      return { protos: LAYER_PROTOS.arp!, src: ip, dst: ip, sport: null, dport: null, eitherWay: false };
    }
    case 'icmp-error': {
      const m = QUOTED.exec(r.about);
      const quoted = m ? (QUOTED_PROTOS[m[1]!] ?? 0) : 0;
      return { protos: LAYER_PROTOS.icmp! | quoted, src: address(m?.[2]), sport: port(m?.[3]), dst: address(m?.[4]), dport: port(m?.[5]), eitherWay: true };
    }
    default:
      return null;
  }
}

/** The records that pass `filter` ('' for all). A drop goes with the frame it interrupted. */
export function filterRecords(records: readonly TraceRecord[], filter: string): TraceRecord[] {
  if (filter.trim() === '') return [...records];
  const passes = compileFilter(filter);
  const out: TraceRecord[] = [];
  let lastFrame: { t: number; passed: boolean } | null = null;
  for (const r of records) {
    let keep: boolean;
    if (r.type === 'drop') {
      keep = lastFrame !== null && lastFrame.t === r.t ? lastFrame.passed : passes({ protos: LAYER_PROTOS[r.layer] ?? PROTO_BIT.ethernet, src: null, dst: null, sport: null, dport: null, eitherWay: false });
    } else {
      const subject = recordSubject(r);
      keep = subject === null || passes(subject);
      if (r.type === 'frame') lastFrame = { t: r.t, passed: keep };
    }
    if (keep) out.push(r);
  }
  return out;
}

export interface ShowIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  isTTY: boolean;
}

const processIo: ShowIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  isTTY: process.stdout.isTTY === true,
};

interface ShowArgs {
  trace: string;
  filter: string;
  colour: boolean | undefined;
}

function parseShowArgs(argv: readonly string[]): ShowArgs | 'help' {
  const positional: string[] = [];
  let colour: boolean | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return 'help';
    if (arg === '--colour' || arg === '--color' || arg.startsWith('--colour=') || arg.startsWith('--color=')) {
      const v = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (v !== 'on' && v !== 'off') throw new ShowUsageError(`--colour: expected on or off, not '${v ?? ''}'`);
      colour = v === 'on';
    } else if (arg.startsWith('--')) throw new ShowUsageError(`unknown argument '${arg}'`);
    else positional.push(arg);
  }
  if (positional.length === 0) throw new ShowUsageError('no trace file given');
  // The filter may come as one argument or several words, as tcpdump takes its expression.
  return { trace: positional[0]!, filter: positional.slice(1).join(' '), colour };
}

/** The `show` subcommand: 0 done, 1 the trace could not be read, 2 a usage or filter error. */
export async function runShow(argv: string[], io: ShowIo = processIo): Promise<number> {
  let args: ShowArgs | 'help';
  try {
    args = parseShowArgs(argv);
    if (args !== 'help' && args.filter.trim() !== '') compileFilter(args.filter);
  } catch (err) {
    if (!(err instanceof ShowUsageError) && !(err instanceof TraceFilterError)) throw err;
    io.stderr(`tapstack show: ${err.message}\n${SHOW_USAGE}\n`);
    return 2;
  }
  if (args === 'help') {
    io.stdout(SHOW_USAGE + '\n');
    return 0;
  }
  let records: TraceRecord[];
  try {
    records = parseTrace(readFileSync(args.trace, 'utf8'), args.trace);
  } catch (err) {
    if (err instanceof TraceFileError) io.stderr(`tapstack show: ${err.message}\n`);
    else io.stderr(`tapstack show: cannot read ${args.trace}: ${(err as Error).message}\n`);
    return 1;
  }
  const noColour = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  const colour = args.colour ?? (io.isTTY && !noColour);
  const lines = filterRecords(records, args.filter).map((r) => formatRecord(r, colour));
  io.stdout(lines.length > 0 ? lines.join('\n') + '\n' : '');
  return 0;
}
