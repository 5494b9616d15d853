// npm run soak: rounds of test/soak/round.ts, one seed after another, for a bounded time
// (SOAK_S seconds of wall time, default 60; at most SOAK_ROUNDS rounds, default 100,000).
// Every 10th round runs twice and must give the same frames (determinism). The heap, after
// a forced GC, must come back to its baseline: it is measured after the first rounds and at
// the end. A failing seed is printed with the command that replays it; keep it as a case in
// test/unit/soak-seeds.test.ts.
//
//   SOAK_S=600 npm run soak         ten minutes
//   SOAK_SEED=123 npm run soak      that one round, verbose
//   SOAK_FIRST=1000 npm run soak    start at another seed

import { runRound, type RoundResult } from './round.ts';

const seconds = Number(process.env.SOAK_S ?? 60);
const maxRounds = Number(process.env.SOAK_ROUNDS ?? 100_000);
const only = process.env.SOAK_SEED;
const first = Number(process.env.SOAK_FIRST ?? 1);
/** Heap growth allowed between the baseline and the end, after a GC (retained state would grow with rounds). */
const HEAP_SLACK_MB = Number(process.env.SOAK_HEAP_SLACK_MB ?? 48);
const BASELINE_ROUND = 5;

const gc = (globalThis as { gc?: () => void }).gc;

function heapMb(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

function report(r: RoundResult): void {
  console.log(
    `seed ${r.seed}: ${r.failures.length === 0 ? 'ok' : 'FAILED'}, ${r.frames} frames (${r.hostileFrames} hostile), ` +
      `${r.connections} connections, ${r.bytesDelivered} bytes delivered, ${(r.virtualMs / 1000).toFixed(0)} virtual s`,
  );
  for (const f of r.failures) console.log(`  ${f}`);
}

async function main(): Promise<void> {
  if (only !== undefined) {
    const r = await runRound(Number(only));
    report(r);
    process.exit(r.failures.length === 0 ? 0 : 1);
  }
  const start = performance.now();
  const failed: number[] = [];
  let rounds = 0;
  let frames = 0;
  let hostile = 0;
  let baseline: number | null = null;
  let peakHeap = 0;
  for (let seed = first; rounds < maxRounds && performance.now() - start < seconds * 1000; seed++) {
    const check = rounds % 10 === 9;
    const r = await runRound(seed, { hashFrames: check, noHttp: check });
    if (check) {
      const again = await runRound(seed, { hashFrames: true, noHttp: true });
      if (again.frameHash !== r.frameHash) r.failures.push('determinism: the same seed gave different frames');
    }
    rounds++;
    frames += r.frames;
    hostile += r.hostileFrames;
    if (r.failures.length > 0) {
      failed.push(seed);
      report(r);
      console.log(`  replay: SOAK_SEED=${seed} npm run soak`);
    } else if (process.env.SOAK_VERBOSE) report(r);
    if (rounds === BASELINE_ROUND && gc) baseline = heapMb();
    if (rounds % 25 === 0) {
      const heap = gc ? heapMb() : 0;
      peakHeap = Math.max(peakHeap, heap);
      console.log(`[soak] ${rounds} rounds, ${failed.length} failed, ${((performance.now() - start) / 1000).toFixed(0)} s, heap ${heap.toFixed(1)} MB`);
    }
  }
  let heapNote = 'heap not measured (run with --expose-gc: npm run soak does)';
  if (gc && baseline !== null) {
    const end = heapMb();
    heapNote = `heap ${baseline.toFixed(1)} MB after ${BASELINE_ROUND} rounds, ${end.toFixed(1)} MB at the end (peak ${Math.max(peakHeap, end).toFixed(1)} MB)`;
    if (end > baseline + HEAP_SLACK_MB) {
      console.log(`[soak] memory: the heap grew by ${(end - baseline).toFixed(1)} MB over ${rounds} rounds (allowed ${HEAP_SLACK_MB} MB)`);
      failed.push(-1);
    }
  }
  const secs = ((performance.now() - start) / 1000).toFixed(0);
  console.log(`[soak] ${rounds} rounds (seeds ${first}-${first + rounds - 1}) in ${secs} s: ${frames} frames, ${hostile} hostile; ${heapNote}`);
  console.log(failed.length === 0 ? '[soak] clean' : `[soak] FAILED: seeds ${failed.filter((s) => s >= 0).join(', ')}${failed.includes(-1) ? ' and memory' : ''}`);
  process.exit(failed.length === 0 ? 0 : 1);
}

await main();
