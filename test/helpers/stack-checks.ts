// Checks integration tests make of a tapstack process in a namespace: that it still
// answers ping, and its counters at exit (--stats-on-exit) with no internal error.
import * as assert from 'uvu/assert';
import type { Namespace, StackProcess } from './netns.ts';

export type Stats = Record<string, { rx: number; tx: number; drops: Record<string, number> }>;

export async function assertAnswering(ns: Namespace, stack: StackProcess, what: string, count = 3): Promise<void> {
  assert.is(stack.child.exitCode, null, `${what}: tapstack exited: ${stack.stderr}`);
  const r = await ns.exec('ping', ['-c', String(count), '-i', '0.05', '-W', '1', '10.0.0.2'], 20_000);
  assert.match(r.stdout, / 0% packet loss/, `${what}: ${r.stdout}${r.stderr}`);
}

/** Stops the stack (SIGTERM) and returns the counters it printed; none may say internal-error. */
export async function stopWithStats(stack: StackProcess): Promise<Stats> {
  const exit = await stack.stop();
  assert.is(exit.code, 0, stack.stderr);
  const stats = JSON.parse(stack.stdout.trim().split('\n').pop()!) as Stats;
  for (const [layer, c] of Object.entries(stats))
    for (const reason of Object.keys(c.drops)) assert.not.ok(reason.startsWith('internal-error'), `${layer}: ${reason}`);
  return stats;
}
