// `tapstack drill [--target stack] [--tolerance-usecs N] [--strict-segments] FILE...`: runs
// packetdrill scripts, one verdict per script (PASS, FAIL with the line and the expected
// and actual packet or return, UNSUPPORTED with the construct), then a summary line.

import { KernelTargetError, runKernelScript } from './kernel/run-in-namespace.ts';
import { runDrillFile, type DrillOptions, type DrillResult } from './runner.ts';

export const DRILL_USAGE = `usage: tapstack drill [--target stack|kernel] [--tolerance-usecs N] [--strict-segments] FILE...
  --target stack       tapstack as the local host 192.168.0.1 on an in-memory link in virtual time (default)
  --target kernel      the host's Linux TCP, through a TAP in a namespace made (and deleted) per script, in real time (root)
  --tolerance-usecs N  timing tolerance (default 4000, packetdrill's; a script's --tolerance_usecs wins)
  --strict-segments    one outbound segment per script line (no merging into TSO-sized lines)
  -v, --verbose        print every packet in and out, with its time, as the script runs
  -h, --help`;

export interface DrillIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: DrillIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

class DrillUsageError extends Error {}

interface DrillArgs {
  target: 'stack' | 'kernel';
  options: DrillOptions;
  verbose: boolean;
  files: string[];
}

function parseDrillArgs(argv: string[]): DrillArgs | 'help' {
  const args: DrillArgs = { target: 'stack', options: {}, verbose: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new DrillUsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '-h':
      case '--help':
        return 'help';
      case '--target': {
        const t = value();
        if (t !== 'stack' && t !== 'kernel') throw new DrillUsageError(`unknown target '${t}' (stack or kernel)`);
        args.target = t;
        break;
      }
      case '--tolerance-usecs': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 0) throw new DrillUsageError('--tolerance-usecs needs a whole number of microseconds');
        args.options.toleranceUsecs = n;
        break;
      }
      case '--strict-segments':
        args.options.strictSegments = true;
        break;
      case '-v':
      case '--verbose':
        args.verbose = true;
        break;
      default:
        if (arg.startsWith('-')) throw new DrillUsageError(`unknown option '${arg}'`);
        args.files.push(arg);
    }
  }
  if (args.files.length === 0) throw new DrillUsageError('no script given');
  return args;
}

/** One script's verdict as the CLI prints it. */
export function formatVerdict(file: string, r: DrillResult): string {
  switch (r.verdict) {
    case 'PASS':
      return `PASS ${file}`;
    case 'UNSUPPORTED':
      return `UNSUPPORTED ${file}${r.line !== null ? `:${r.line}` : ''}: ${r.construct}`;
    case 'FAIL':
      return `FAIL ${file}:${r.line}: ${r.text}\n  ${r.message.replace(/\n/g, '\n  ')}`;
  }
}

export async function runDrill(argv: string[], io: DrillIo = processIo): Promise<number> {
  let args: DrillArgs | 'help';
  try {
    args = parseDrillArgs(argv);
  } catch (err) {
    if (!(err instanceof DrillUsageError)) throw err;
    io.stderr(`tapstack drill: ${err.message}\n${DRILL_USAGE}\n`);
    return 2;
  }
  if (args === 'help') {
    io.stdout(DRILL_USAGE + '\n');
    return 0;
  }
  let passed = 0;
  let unsupported = 0;
  let failed = 0;
  for (const file of args.files) {
    let result: DrillResult;
    try {
      const verbose = args.verbose ? (line: string) => io.stderr(`  ${line}\n`) : undefined;
      result = args.target === 'kernel' ? await runKernelScript(file, { ...args.options, verbose }) : await runDrillFile(file, { ...args.options, verbose });
    } catch (err) {
      if (err instanceof KernelTargetError) {
        io.stderr(`tapstack drill: ${err.message}\n`);
        return 2;
      }
      // A runner bug or an unreadable file fails this script, not the whole run.
      result = { verdict: 'FAIL', line: 0, text: '', message: `runner error: ${(err as Error).message}` };
    }
    if (result.verdict === 'PASS') passed++;
    else if (result.verdict === 'UNSUPPORTED') unsupported++;
    else failed++;
    io.stdout(formatVerdict(file, result) + '\n');
  }
  io.stdout(`drill: ${passed}/${args.files.length} passed, ${unsupported} unsupported\n`);
  return failed === 0 ? 0 : 1;
}
