// `--target kernel`: each script runs in a network namespace of its own, made here and
// deleted afterwards (as Google's verdicts in the corpus were taken: a fresh namespace per
// script), by a child process started inside it (child.ts), so that the kernel's settings,
// sockets and TIME-WAIT entries of one script never meet the next, and nothing reaches the
// machine's own namespace. The child is ended by its PID when the script overruns.

import { execFile } from 'node:child_process';
import type { DrillOptions, DrillResult } from '../runner.ts';
import { childArgs, createNamespace, deleteNamespace } from './namespace.ts';

export { KernelTargetError } from './namespace.ts';

/** A script that has not ended by then is ended (the longest corpus scripts take under a minute). */
export const KERNEL_SCRIPT_TIMEOUT_MS = 180_000;

export type KernelDrillResult = DrillResult & { refused?: string[] };

export interface KernelRunOptions extends Pick<DrillOptions, 'toleranceUsecs' | 'strictSegments'> {
  /** Where the child's packet lines go (--verbose). */
  verbose?: (line: string) => void;
}

export async function runKernelScript(file: string, options: KernelRunOptions, timeoutMs = KERNEL_SCRIPT_TIMEOUT_MS): Promise<KernelDrillResult> {
  const name = createNamespace('drill');
  try {
    const { verbose, ...rest } = options;
    const args = childArgs(name, 'child', [file, JSON.stringify({ ...rest, verbose: verbose !== undefined })]);
    const out = await new Promise<{ stdout: string; stderr: string; error: Error | null }>((resolve) => {
      execFile('ip', args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => resolve({ stdout, stderr, error }));
    });
    if (verbose) for (const l of out.stderr.split('\n')) if (l) verbose(l);
    const line = out.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as KernelDrillResult;
    } catch {
      const why = out.error && (out.error as { killed?: boolean }).killed ? `ended after ${timeoutMs / 1000} s` : `exited: ${out.error?.message ?? 'no verdict'}`;
      return { verdict: 'FAIL', line: 0, text: '', message: `kernel run ${why}\n${out.stderr.trim().split('\n').slice(-5).join('\n')}` };
    }
  } finally {
    deleteNamespace(name);
  }
}
