// `tapstack show TRACE.jsonl [FILTER]`: a saved trace (JSON lines) read back as the text
// trace, as `tcpdump -r FILE [expression]` reads a capture. Record once with
// `--trace-format json` (what the page and `tapstack plot` read), read it as text, filtered
// by the same language as --trace.

import { readFileSync } from 'node:fs';
import { compileFilter, recordFilter, TraceFilterError } from './filter.js';
import { formatRecord } from './format-text.js';
import { parseTrace, TraceFileError } from './read.ts';
import type { TraceRecord } from './schema.ts';

export const SHOW_USAGE = `usage: tapstack show TRACE.jsonl [FILTER] [--colour on|off]
  TRACE.jsonl         a trace written by --trace-format json (one record per line)
  FILTER              as --trace's: 'tcp port 80', 'host 10.0.0.1 and not arp', ...
  --colour on|off     ANSI colour (default: on a terminal, unless NO_COLOR is set)
  -h, --help`;

class ShowUsageError extends Error {}

/** The records that pass `filter` ('' for all), as the live tracer would have passed them. */
export function filterRecords(records: readonly TraceRecord[], filter: string): TraceRecord[] {
  return records.filter(recordFilter(filter));
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
