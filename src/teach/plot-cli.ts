// `tapstack plot TRACE.jsonl [--conn ADDR:PORT] [-o FILE.svg]`: pictures of one connection
// from a saved trace (JSON lines, src/trace/schema.ts), without a browser, for slides and
// reports. One SVG: the time-sequence graph, and below it cwnd/ssthresh and RTT on the same
// time axis. The drawing is the live page's (charts.js).

import { readFileSync, writeFileSync } from 'node:fs';
import { TRACE_RECORD_TYPES, type ConnId, type TraceRecord } from '../trace/schema.ts';
import { type ConnectionSummary, connectionsIn, cwndSvg, escapeXml, rttSvg, timeSequenceSvg } from './charts.js';

export const PLOT_USAGE = `usage: tapstack plot TRACE.jsonl [--conn ADDR:PORT] [-o FILE.svg]
  TRACE.jsonl         a trace written by --trace-format json (one record per line)
  --conn ADDR:PORT    the connection: either end's address and port, or LOCAL>REMOTE
                      (default: the connection that moved the most bytes)
  -o, --output FILE   where the SVG goes (default: standard output)
  -h, --help`;

/** A trace that cannot be read: the message names the file and, for a bad line, its number. */
export class TraceFileError extends Error {}

class PlotUsageError extends Error {}

interface PlotArgs {
  trace: string;
  conn: string | undefined;
  output: string | undefined;
}

function parsePlotArgs(argv: readonly string[]): PlotArgs | 'help' {
  const positional: string[] = [];
  let conn: string | undefined;
  let output: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new PlotUsageError(`${name} needs a value`);
      return v;
    };
    if (name === '-h' || name === '--help') return 'help';
    else if (name === '--conn') conn = value();
    else if (name === '-o' || name === '--output') output = value();
    else if (arg.startsWith('-') && arg !== '-') throw new PlotUsageError(`unknown argument '${arg}'`);
    else positional.push(arg);
  }
  if (positional.length === 0) throw new PlotUsageError('no trace file given');
  if (positional.length > 1) throw new PlotUsageError(`one trace file, not ${positional.length}`);
  return { trace: positional[0]!, conn, output };
}

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
 * Blank lines are allowed; a line that is not a JSON object, or a known record missing what
 * the charts read, is an error naming the line.
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

/**
 * The connection `--conn` names: the whole id, or either end's ADDR:PORT (of several, the one
 * that moved the most bytes: `connections` is in that order). Without it, the busiest.
 */
export function pickConnection(connections: readonly ConnectionSummary[], wanted: string | undefined): ConnectionSummary | null {
  if (wanted === undefined) return connections[0] ?? null;
  return connections.find((c) => c.conn === wanted || c.conn.split('>').includes(wanted)) ?? null;
}

/** The time span of everything the trace says about one connection. */
function spanOf(records: readonly TraceRecord[], conn: ConnId): { from: number; to: number } {
  let from = Infinity;
  let to = -Infinity;
  for (const r of records) {
    const c = r.type === 'frame' ? r.tcp?.conn : 'conn' in r ? r.conn : undefined;
    if (c !== conn) continue;
    from = Math.min(from, r.t);
    to = Math.max(to, r.t);
  }
  return { from, to };
}

const WIDTH = 800;

/** One SVG: a title, the time-sequence graph, cwnd/ssthresh and RTT below on the same time axis. */
export function plotSvg(records: readonly TraceRecord[], summary: ConnectionSummary, source: string): string {
  const { from, to } = spanOf(records, summary.conn);
  const window = { from, to, width: WIDTH };
  const parts = [
    { svg: timeSequenceSvg(records, summary.conn, { ...window, height: 420 }), height: 420 },
    { svg: cwndSvg(records, summary.conn, { ...window, height: 240 }), height: 240 },
    { svg: rttSvg(records, summary.conn, { ...window, height: 240 }), height: 240 },
  ];
  const head = 56;
  const height = head + parts.reduce((sum, p) => sum + p.height, 0);
  const ms = (v: number): string => `${v.toFixed(3)} ms`;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="DejaVu Sans, Verdana, sans-serif">`,
    `<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">${escapeXml(`Connection ${summary.conn.replace('>', ' \u2192 ')}`)}</text>`,
    `<text x="16" y="44" font-size="12" fill="#444">${escapeXml(
      `${ms(from)} to ${ms(to)} (${ms(to - from)}), ${summary.bytes} payload bytes${summary.state ? `, last state ${summary.state}` : ''}; trace ${source}`,
    )}</text>`,
  ];
  let y = head;
  for (const p of parts) {
    // Each chart is a complete SVG; nested, it keeps its own coordinates.
    out.push(p.svg.replace('<svg xmlns="http://www.w3.org/2000/svg" ', `<svg xmlns="http://www.w3.org/2000/svg" x="0" y="${y}" `).trimEnd());
    y += p.height;
  }
  out.push('</svg>', '');
  return out.join('\n');
}

export interface PlotIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: PlotIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** The `plot` subcommand: 0 done, 1 the trace or the output failed, 2 a usage error. */
export async function runPlot(argv: string[], io: PlotIo = processIo): Promise<number> {
  let args: PlotArgs | 'help';
  try {
    args = parsePlotArgs(argv);
  } catch (err) {
    if (!(err instanceof PlotUsageError)) throw err;
    io.stderr(`tapstack plot: ${err.message}\n${PLOT_USAGE}\n`);
    return 2;
  }
  if (args === 'help') {
    io.stdout(PLOT_USAGE + '\n');
    return 0;
  }
  const fail = (message: string): number => {
    io.stderr(`tapstack plot: ${message}\n`);
    return 1;
  };
  let text: string;
  try {
    text = readFileSync(args.trace, 'utf8');
  } catch (err) {
    return fail(`cannot read ${args.trace}: ${(err as Error).message}`);
  }
  let records: TraceRecord[];
  try {
    records = parseTrace(text, args.trace);
  } catch (err) {
    if (err instanceof TraceFileError) return fail(err.message);
    throw err;
  }
  if (records.length === 0) return fail(`${args.trace}: empty trace (no records)`);
  const connections = connectionsIn(records);
  if (connections.length === 0) return fail(`${args.trace}: no TCP connection in the trace`);
  const chosen = pickConnection(connections, args.conn);
  if (!chosen) {
    const list = connections.map((c) => `  ${c.conn}  (${c.bytes} bytes)`).join('\n');
    return fail(`no connection matches '${args.conn}'; the trace has:\n${list}`);
  }
  const svg = plotSvg(records, chosen, args.trace);
  if (args.output === undefined || args.output === '-') {
    io.stdout(svg);
    return 0;
  }
  try {
    writeFileSync(args.output, svg);
  } catch (err) {
    return fail(`cannot write ${args.output}: ${(err as Error).message}`);
  }
  io.stderr(`tapstack plot: ${chosen.conn} -> ${args.output}\n`);
  return 0;
}
