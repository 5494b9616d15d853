// The stateful fuzzer: fast-check generates cases (an opening and a sequence of steps, as
// model-based commands), runs each on the target(s) with the RFC oracle on every reply and,
// with two targets, the differential oracle; a failing case is shrunk by fast-check to a
// minimal sequence and written out as a packetdrill script. The (state, event) pairs the
// cases reach are the coverage.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as FastCheck from 'fast-check';
import { CaseRun, FuzzFailure, type Opening, type SegmentSpec, type Step } from './case-run.ts';
import { differenceOf } from './differential.ts';
import type { FuzzTarget } from './target.ts';

export interface FuzzOptions {
  seed: number;
  runs: number;
  /** Makes fresh targets for one case: one, or two for the differential oracle. */
  targets: () => FuzzTarget[];
  /** The label of the targets in scripts (`stack`, `both`). */
  targetName: string;
  /** Steps per case at most (fast-check's maxCommands). */
  maxSteps?: number;
  /** Sysctls every target starts with (and the scripts set). */
  sysctls?: Record<string, number>;
  /** Where to write one .pkt per failure. */
  out?: string;
  /** Longest time step (a real-time target waits it out: the kernel's cases keep to seconds). */
  maxAdvanceMs?: number;
}

export interface FuzzFinding {
  rule: string;
  rfc: string;
  message: string;
  /** The shrunk case's script, and its number of events (packet lines and calls). */
  script: string;
  events: number;
  /** Steps of the case run up to the failure, after the opening (0: the opening itself failed). */
  steps: number;
  target: string;
  path: string | null;
  file: string | null;
}

export interface FuzzReport {
  runs: number;
  findings: FuzzFinding[];
  /** Distinct (state, event) pairs reached, as "STATE:event". */
  transitions: Set<string>;
}

/** Loads fast-check (a dependency of the package, loaded only when the fuzzer runs: the stack itself never needs it). */
async function loadFastCheck(): Promise<typeof FastCheck> {
  try {
    const mod = (await import('fast-check')) as unknown as { default?: typeof FastCheck } & typeof FastCheck;
    return mod.default ?? mod;
  } catch {
    throw new Error('tapstack fuzz needs fast-check (npm install fast-check)');
  }
}

/** The time steps a case takes, in ms: a delayed ACK, an RTO, its backoffs, a keepalive's minute. */
const ADVANCES = [1, 40, 200, 500, 1000, 3000, 60_000];

const FLAG_SETS = ['.', 'P.', 'F.', 'FP.', 'R', 'R.', 'S', 'S.', 'SF', 'SR', 'F', 'P', '', 'SFRP.', 'RP.', 'SP.'];

function arbitraries(fc: typeof FastCheck, maxAdvanceMs = Infinity) {
  const opening: FastCheck.Arbitrary<Opening> = fc.record({
    mode: fc.constantFrom('passive' as const, 'active' as const),
    mss: fc.constantFrom(1460, 536, 1000),
    wscale: fc.constantFrom(7 as number | null, null, 0, 14),
    sackOK: fc.boolean(),
    ts: fc.boolean(),
    win: fc.constantFrom(65535, 29200, 1000, 0),
    complete: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  });
  const segment: FastCheck.Arbitrary<SegmentSpec> = fc.record({
    kind: fc.constant('segment' as const),
    flags: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('.', 'P.', 'F.', 'R', 'S') }, { weight: 2, arbitrary: fc.constantFrom(...FLAG_SETS) }, { weight: 1, arbitrary: fc.subarray(['S', 'F', 'R', 'P', '.']).map((l) => l.join('')) }),
    seqMode: fc.constantFrom('next' as const, 'next' as const, 'next' as const, 'old' as const, 'inWindow' as const, 'beyond' as const, 'hole' as const, 'duplicate' as const, 'random' as const),
    seqDelta: fc.nat({ max: 1_000_000 }),
    ackMode: fc.constantFrom('ackable' as const, 'ackable' as const, 'ackable' as const, 'una' as const, 'between' as const, 'unsent' as const, 'tooOld' as const, 'random' as const),
    ackDelta: fc.nat({ max: 1_000_000 }),
    length: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 10 }) }, { weight: 2, arbitrary: fc.integer({ min: 100, max: 1460 }) }),
    win: fc.constantFrom(65535, 65535, 0, 100, 8192, 1),
    sack: fc.boolean(),
    synOptions: fc.boolean(),
  });
  const step: FastCheck.Arbitrary<Step> = fc.oneof(
    { weight: 8, arbitrary: segment },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('write' as const), size: fc.constantFrom(1, 10, 100, 1000, 3000, 10_000, 70_000) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), size: fc.constantFrom(1, 10, 1000, 100_000) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('shutdown' as const), how: fc.constantFrom('SHUT_WR' as const, 'SHUT_RD' as const, 'SHUT_RDWR' as const) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) },
    { weight: 1, arbitrary: fc.constantFrom({ kind: 'closeListener' as const }, { kind: 'accept' as const }, { kind: 'drop' as const }, { kind: 'reopen' as const }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(...ADVANCES.filter((ms) => ms <= maxAdvanceMs)) }) },
  );
  return { opening, step };
}

/** A fast-check command wrapping one step: it always applies, and runs on every target of the case. */
class StepCommand implements FastCheck.AsyncCommand<object, CaseRuns> {
  constructor(readonly step: Step) {}
  check(): boolean {
    return true;
  }
  async run(_model: object, runs: CaseRuns): Promise<void> {
    await runs.step(this.step);
  }
  toString(): string {
    return JSON.stringify(this.step);
  }
}

/** The case on each target at once, with the differential oracle between the first two. */
class CaseRuns {
  constructor(
    readonly runs: CaseRun[],
    private readonly known: ReadonlySet<string>,
  ) {}
  async step(step: Step): Promise<void> {
    for (const r of this.runs) await r.step(step);
    this.compare();
  }
  compare(): void {
    if (this.runs.length < 2 || this.known.has('differential')) return;
    const [a, b] = this.runs as [CaseRun, CaseRun];
    const v = differenceOf(a.target.name, a.lastReplies, b.target.name, b.lastReplies);
    if (v) {
      a.script.violation(a.target.now(), v);
      a.failed = true;
      throw new FuzzFailure(v, a.target.now());
    }
  }
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const fc = await loadFastCheck();
  const { opening, step } = arbitraries(fc, options.maxAdvanceMs);
  const transitions = new Set<string>();
  const findings: FuzzFinding[] = [];
  const known = new Set<string>();
  let runsLeft = options.runs;
  let runsDone = 0;
  let round = 0;
  while (runsLeft > 0) {
    let lastFailure: { failure: FuzzFailure; run: CaseRun; steps: number } | null = null;
    const property = fc.asyncProperty(opening, fc.commands([step.map((s) => new StepCommand(s))], { maxCommands: options.maxSteps ?? 12 }), async (open, commands) => {
      const targets = options.targets();
      const runs = new CaseRuns(
        targets.map((t) => new CaseRun(t, transitions, known)),
        known,
      );
      let steps = 0;
      try {
        for (const t of targets) await t.start({ sysctls: options.sysctls });
        for (const r of runs.runs) await r.open(open);
        runs.compare();
        for (const c of commands) {
          steps++;
          await c.run({}, runs);
        }
      } catch (err) {
        if (err instanceof FuzzFailure) {
          const failed = runs.runs.find((r) => r.failed) ?? runs.runs[0]!;
          lastFailure = { failure: err, run: failed, steps };
        }
        throw err;
      } finally {
        for (const t of targets) await t.close();
      }
    });
    const result = await fc.check(property, { seed: options.seed + round, numRuns: runsLeft });
    runsDone += result.numRuns;
    runsLeft -= result.numRuns;
    round++;
    if (!result.failed) break;
    const failure = lastFailure as { failure: FuzzFailure; run: CaseRun; steps: number } | null;
    if (!failure) throw result.errorInstance instanceof Error ? result.errorInstance : new Error(`fuzz: a case failed without breaking a rule: ${String(result.errorInstance)}`);
    const v = failure.failure.violation;
    known.add(v.rule);
    const script = failure.run.script.render({ seed: options.seed + round - 1, path: result.counterexamplePath, target: options.targetName, sysctls: options.sysctls ?? {} }, v);
    const finding: FuzzFinding = { rule: v.rule, rfc: v.rfc, message: v.message, script, events: failure.run.script.events, steps: failure.steps, target: failure.run.target.name, path: result.counterexamplePath, file: null };
    if (options.out) {
      mkdirSync(options.out, { recursive: true });
      finding.file = join(options.out, `fuzz-${options.seed}-${findings.length + 1}-${v.rule}.pkt`);
      writeFileSync(finding.file, script);
    }
    findings.push(finding);
    // A rule that keeps failing the same way is reported once; the next round looks for others.
    if (findings.length >= 20) break;
  }
  return { runs: runsDone, findings, transitions };
}
