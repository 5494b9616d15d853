// `tapstack fuzz [--target stack|kernel|both] [--seed N] [--runs N] [--out DIR]`: runs the
// stateful fuzzer, prints each finding (rule, RFC section, the shrunk script's file), the
// (state, event) pairs covered, and as its last line `fuzz: R runs, F failures, C transitions`.
// Exit 0 when nothing failed, 1 on findings, 2 on a usage error or an unavailable target.

import { runFuzz } from './fuzz.ts';
import { createKernelTarget, KERNEL_MAX_ADVANCE_MS, KernelTargetUnavailable } from './kernel-target.ts';
import { StackTarget } from './stack-target.ts';
import type { FuzzTarget } from './target.ts';

export const FUZZ_USAGE = `usage: tapstack fuzz [--target stack|kernel|both] [--seed N] [--runs N] [--out DIR] [--steps N] [--sysctl NAME=VALUE]...
  Stateful TCP fuzzing: fast-check cases of socket calls, crafted segments and time steps
  against the target (tapstack in virtual time, or the host's Linux), an RFC oracle on every
  reply, with both targets a differential oracle; failures are shrunk and written as
  packetdrill scripts into DIR (replay them with tapstack drill --target stack FILE).
  --target   stack (default), kernel, or both (differential)
  --seed     fast-check seed (default 1): the same seed gives the same cases and frames
  --runs     cases to run (default 100)
  --out      directory for one .pkt per failure
  --steps    steps per case at most (default 12)
  --sysctl   a net.ipv4 setting every target starts with (tcp_challenge_ack_limit=0,
             tcp_timestamps=0, ...), written into the scripts as drill replays them`;

interface FuzzArgs {
  target: 'stack' | 'kernel' | 'both';
  seed: number;
  runs: number;
  out: string | undefined;
  steps: number;
  sysctls: Record<string, number>;
}

class UsageError extends Error {}

function parseFuzzArgs(argv: string[]): FuzzArgs | 'help' {
  const args: FuzzArgs = { target: 'stack', seed: 1, runs: 100, out: undefined, steps: 12, sysctls: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    const count = (min: number): number => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) throw new UsageError(`${arg}: expected an integer >= ${min}, not '${v}'`);
      return n;
    };
    switch (arg) {
      case '--help':
      case '-h':
        return 'help';
      case '--target': {
        const v = value();
        if (v !== 'stack' && v !== 'kernel' && v !== 'both') throw new UsageError(`--target: expected stack, kernel or both, not '${v}'`);
        args.target = v;
        break;
      }
      case '--seed':
        args.seed = count(0);
        break;
      case '--runs':
        args.runs = count(1);
        break;
      case '--steps':
        args.steps = count(1);
        break;
      case '--out':
        args.out = value();
        break;
      case '--sysctl': {
        const v = value();
        const m = /^(?:net\.ipv4\.)?([a-z_0-9]+)=(\d+)$/.exec(v);
        if (!m) throw new UsageError(`--sysctl: expected NAME=NUMBER (tcp_challenge_ack_limit=0), not '${v}'`);
        args.sysctls[m[1]!] = Number(m[2]);
        break;
      }
      default:
        throw new UsageError(`unknown argument '${arg}'`);
    }
  }
  return args;
}

export async function runFuzzCli(argv: string[], write: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  let args: FuzzArgs | 'help';
  try {
    args = parseFuzzArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tapstack fuzz: ${err.message}\n${FUZZ_USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (args === 'help') {
    write(FUZZ_USAGE + '\n');
    return 0;
  }
  const target = args.target;
  const targets = (): FuzzTarget[] => {
    if (target === 'stack') return [new StackTarget()];
    if (target === 'kernel') return [createKernelTarget()];
    return [new StackTarget(), createKernelTarget()];
  };
  try {
    // An unavailable target says so before any case runs.
    if (target !== 'stack') targets();
    const started = Date.now();
    const report = await runFuzz({
      seed: args.seed,
      runs: args.runs,
      targets,
      targetName: target,
      maxSteps: args.steps,
      out: args.out,
      sysctls: args.sysctls,
      maxAdvanceMs: target === 'stack' ? undefined : KERNEL_MAX_ADVANCE_MS,
    });
    const seconds = (Date.now() - started) / 1000;
    for (const f of report.findings) {
      write(`FAIL ${f.rule} (${f.rfc}) on ${f.target}: ${f.message}\n  shrunk to ${f.steps} steps, ${f.events} script events${f.file ? `: ${f.file}` : ''}\n`);
      if (!f.file) write(f.script.replace(/^/gm, '    '));
    }
    const pairs = [...report.transitions].sort();
    write(`transitions (state:event), ${pairs.length} distinct:\n`);
    for (let i = 0; i < pairs.length; i += 6) write(`  ${pairs.slice(i, i + 6).join('  ')}\n`);
    write(`fuzz: ${report.runs} runs in ${seconds.toFixed(1)} s, seed ${args.seed}\n`);
    write(`fuzz: ${report.runs} runs, ${report.findings.length} failures, ${pairs.length} transitions\n`);
    return report.findings.length === 0 ? 0 : 1;
  } catch (err) {
    if (err instanceof KernelTargetUnavailable) {
      process.stderr.write(`tapstack fuzz: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`tapstack fuzz: ${(err as Error).message}\n`);
    return /needs fast-check/.test((err as Error).message) ? 2 : 1;
  }
}
