// `--target kernel`: each script runs in a network namespace of its own, made here and
// deleted afterwards (as Google's verdicts in the corpus were taken: a fresh namespace per
// script), by a child process started inside it (child.ts), so that the kernel's settings,
// sockets and TIME-WAIT entries of one script never meet the next, and nothing reaches the
// machine's own namespace. The child is ended by its PID when the script overruns.

import { execFile, execFileSync } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DrillOptions, DrillResult } from '../runner.ts';

/** A script that has not ended by then is ended (the longest corpus scripts take under a minute). */
export const KERNEL_SCRIPT_TIMEOUT_MS = 180_000;

const live = new Set<string>();
let hooked = false;

function deleteNamespace(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // already gone
  }
  live.delete(name);
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const name of live) deleteNamespace(name);
  });
}

export class KernelTargetError extends Error {}

let sequence = 0;

export type KernelDrillResult = DrillResult & { refused?: string[] };

export interface KernelRunOptions extends Pick<DrillOptions, 'toleranceUsecs' | 'strictSegments'> {
  /** Where the child's packet lines go (--verbose). */
  verbose?: (line: string) => void;
}

export async function runKernelScript(file: string, options: KernelRunOptions, timeoutMs = KERNEL_SCRIPT_TIMEOUT_MS): Promise<KernelDrillResult> {
  if (process.getuid?.() !== 0) throw new KernelTargetError('--target kernel needs root (it makes a network namespace and a TAP device)');
  const name = `tapstack-drill-${process.pid}-${++sequence}`;
  try {
    execFileSync('ip', ['netns', 'add', name], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new KernelTargetError(`ip netns add ${name}: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
  }
  live.add(name);
  hookExit();
  try {
    execFileSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
    // The child runs the way this process runs: the same Node, the same loader (tsx from a checkout).
    const here = fileURLToPath(import.meta.url);
    const child = here.slice(0, -extname(here).length).replace(/run-in-namespace$/, 'child') + extname(here);
    const { verbose, ...rest } = options;
    // Real time on a shared machine: the child runs at a higher priority (nice -10, as root),
    // so that other work delays the script's packets less (packetdrill's verdicts suffer the same).
    const args = ['netns', 'exec', name, 'nice', '-n', '-10', process.execPath, '--expose-gc', ...process.execArgv, child, file, JSON.stringify({ ...rest, verbose: verbose !== undefined })];
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
