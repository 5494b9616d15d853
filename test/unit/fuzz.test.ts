// `tapstack fuzz`: a clean run on the real stack finds nothing; deliberately broken peers (a
// config without challenge ACKs, links that drop duplicate ACKs, ack one byte more than
// received, or shrink the window's right edge) are each found and shrunk to a short case;
// the shrunk script replays on `tapstack drill --target stack` to a FAIL at its last line;
// the differential oracle sees no difference between the stack and itself and one with an
// altered stack; the CLI's summary, --help and usage errors (exit 2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type DrillResult, runDrillSource } from '../../src/drill/runner.ts';
import type { WireSegment } from '../../src/drill/wire.ts';
import { runFuzzCli } from '../../src/fuzz/fuzz-cli.ts';
import { type FuzzFinding, type FuzzOptions, type FuzzReport, runFuzz } from '../../src/fuzz/fuzz.ts';
import { RemoteModel } from '../../src/fuzz/model.ts';
import { noAckOfUnsentData, retransmissionWithinRtoBounds, timestampsMonotonic, windowRightEdgeNeverMovesLeft } from '../../src/fuzz/oracle.ts';
import { StackTarget, type StackTargetOptions } from '../../src/fuzz/stack-target.ts';
import type { OutboundSegment } from '../../src/fuzz/target.ts';
import { ACK, RST, SYN } from '../../src/tcp/tcp-segment.ts';

const fuzz = (options: Partial<FuzzOptions> & { stack?: StackTargetOptions }): Promise<FuzzReport> =>
  runFuzz({ seed: 1, runs: 60, targetName: 'stack', targets: () => [new StackTarget(options.stack)], ...options });

/** The first finding, which the fuzzer shrank: a short sequence of steps. */
function onlyFinding(report: FuzzReport, rules: string[]): FuzzFinding {
  const f = report.findings.find((x) => rules.includes(x.rule));
  if (!f) assert.unreachable(`expected a finding of ${rules.join(' or ')}, got ${JSON.stringify(report.findings.map((x) => x.rule))}`);
  assert.ok(f!.steps <= 8, `shrunk to ${f!.steps} steps:\n${f!.script}`);
  return f!;
}

const lastLine = (script: string): number => script.trimEnd().split('\n').length;

test('a clean run on the stack finds nothing and covers many (state, event) pairs', async () => {
  const report = await fuzz({ seed: 1, runs: 100 });
  assert.equal(
    report.findings.map((f) => `${f.rule}: ${f.message}\n${f.script}`),
    [],
  );
  assert.is(report.runs, 100);
  assert.ok(report.transitions.size >= 40, `${report.transitions.size} transitions`);
  assert.ok(report.transitions.has('ESTABLISHED:RST') && report.transitions.has('LISTEN:SYN'));
});

test('challenge ACKs disabled (tcp_challenge_ack_limit=0): found, shrunk, and the script replays to FAIL at its last line', async () => {
  const sysctls = { tcp_challenge_ack_limit: 0 };
  const report = await fuzz({ sysctls, stack: {} });
  const f = onlyFinding(report, ['rstInWindowGetsChallengeAck', 'synInSynchronizedStateGetsChallengeAck', 'oldAckGetsChallengeAck']);
  assert.match(f.script, /sysctl -q net.ipv4.tcp_challenge_ack_limit=0/);
  const result: DrillResult = await runDrillSource(f.script, '.');
  assert.is(result.verdict, 'FAIL', JSON.stringify(result));
  if (result.verdict === 'FAIL') assert.is(result.line, lastLine(f.script), `${result.message}\n${f.script}`);
});

test('a link that drops duplicate ACKs (challenge and out-of-window answers): found and shrunk', async () => {
  let lastAck: number | null = null;
  const alterOutbound = (s: WireSegment): WireSegment | null => {
    const pure = s.flags === ACK && s.payloadLength === 0;
    const duplicate = pure && s.ack === lastAck;
    if (s.flags & ACK) lastAck = s.ack;
    return duplicate ? null : s;
  };
  const report = await fuzz({ stack: { alterOutbound } });
  onlyFinding(report, ['rstInWindowGetsChallengeAck', 'synInSynchronizedStateGetsChallengeAck', 'oldAckGetsChallengeAck', 'unacceptableSegmentIsAcked']);
});

test('a link that acks one byte more than received: found and shrunk', async () => {
  const alterOutbound = (s: WireSegment): WireSegment => (s.flags & ACK && !(s.flags & (SYN | RST)) ? { ...s, ack: (s.ack + 1) >>> 0 } : s);
  const report = await fuzz({ stack: { alterOutbound } });
  onlyFinding(report, ['noAckOfUnsentData', 'ackCoversOnlyReceivedData']);
});

test("a link that moves the window's right edge left: found and shrunk", async () => {
  let count = 0;
  const alterOutbound = (s: WireSegment): WireSegment => (s.flags & ACK && !(s.flags & (SYN | RST)) && count++ % 2 === 1 ? { ...s, window: Math.max(0, s.window - 1) } : s);
  const report = await fuzz({ stack: { alterOutbound } });
  onlyFinding(report, ['windowRightEdgeNeverMovesLeft']);
});

test('a link that drops RSTs: found (RFC 9293 3.10.7.1/3.10.7.2) and shrunk', async () => {
  const report = await fuzz({ stack: { alterOutbound: (s) => (s.flags & RST ? null : s) } });
  onlyFinding(report, ['closedPortSendsReset', 'listenAnswersAckWithReset']);
});

test('a minimum RTO of 20 ms (RFC 6298 2.4 wants 1 s, Linux 200 ms): found, and the script replays to a timing FAIL at its last line', async () => {
  const tcp = { rtoMinMs: 20 };
  const report = await fuzz({ stack: { tcp } });
  const f = onlyFinding(report, ['retransmissionWithinRtoBounds']);
  const result = await runDrillSource(f.script, '.', { tcp });
  assert.is(result.verdict, 'FAIL', JSON.stringify(result));
  if (result.verdict === 'FAIL') {
    assert.is(result.line, lastLine(f.script), `${result.message}\n${f.script}`);
    assert.match(result.message, /timing error/);
  }
});

test('oracle rules on crafted replies: RTO bounds, timestamps, the right edge, acks of unsent data', () => {
  const m = new RemoteModel();
  m.targetSynSeen = true;
  m.synSent = true;
  m.targetMax = 101;
  m.una = 1;
  m.sentAt.set(1, 1000);
  const seg = (over: Partial<OutboundSegment>): OutboundSegment => ({ at: 1000, srcPort: 8080, dstPort: 48879, flags: ACK, seq: 1, ack: 1, window: 100, payloadLength: 100, options: [], ...over });
  assert.is(retransmissionWithinRtoBounds({ model: m, segment: seg({ at: 1100 }) })?.rule, 'retransmissionWithinRtoBounds');
  assert.is(retransmissionWithinRtoBounds({ model: m, segment: seg({ at: 1200 }) }), null);
  m.lastInboundAt = 1050; // a dupack or SACK from the remote may explain an early resend
  assert.is(retransmissionWithinRtoBounds({ model: m, segment: seg({ at: 1100 }) }), null);
  m.lastTargetTsVal = 100;
  assert.is(timestampsMonotonic({ model: m, segment: seg({ options: [{ kind: 'TS', val: 99, ecr: 0 }] }) })?.rule, 'timestampsMonotonic');
  assert.is(timestampsMonotonic({ model: m, segment: seg({ options: [{ kind: 'TS', val: 100, ecr: 0 }] }) }), null);
  m.rightEdge = 1001;
  assert.is(windowRightEdgeNeverMovesLeft({ model: m, segment: seg({ ack: 1, window: 999, payloadLength: 0 }) })?.rule, 'windowRightEdgeNeverMovesLeft');
  assert.is(windowRightEdgeNeverMovesLeft({ model: m, segment: seg({ ack: 1, window: 1000, payloadLength: 0 }) }), null);
  m.sent.push([0, 1]);
  assert.is(noAckOfUnsentData({ model: m, segment: seg({ ack: 2, payloadLength: 0 }) })?.rule, 'noAckOfUnsentData');
  assert.is(noAckOfUnsentData({ model: m, segment: seg({ ack: 1, payloadLength: 0 }) }), null);
});

test('differential oracle: the stack against itself agrees; against an altered stack it differs', async () => {
  const same = await runFuzz({ seed: 2, runs: 30, targetName: 'both', targets: () => [new StackTarget({}, 'stack-a'), new StackTarget({}, 'stack-b')] });
  assert.equal(
    same.findings.map((f) => f.message),
    [],
  );
  // The altered stack answers nothing to an RST (no challenge ACKs): an RFC rule and a difference both see it.
  const altered = await runFuzz({
    seed: 2,
    runs: 60,
    targetName: 'both',
    targets: () => [new StackTarget({}, 'stack'), new StackTarget({ tcp: { challengeAckLimit: 0 } }, 'altered')],
  });
  assert.ok(
    altered.findings.some((f) => f.rule === 'differential'),
    JSON.stringify(altered.findings.map((f) => f.rule)),
  );
});

test('the same seed gives the same cases, findings and coverage', async () => {
  const sysctls = { tcp_challenge_ack_limit: 0 };
  const a = await fuzz({ seed: 3, runs: 20, sysctls });
  const b = await fuzz({ seed: 3, runs: 20, sysctls });
  assert.equal(
    a.findings.map((f) => f.script),
    b.findings.map((f) => f.script),
  );
  assert.equal([...a.transitions].sort(), [...b.transitions].sort());
});

test('CLI: the summary line, --help, usage errors exit 2 (the kernel target: test/integration/fuzz-kernel.test.ts)', async () => {
  let out = '';
  const code = await runFuzzCli(['--seed', '1', '--runs', '10'], (s) => (out += s));
  assert.is(code, 0, out);
  assert.match(out, /^fuzz: 10 runs, 0 failures, \d+ transitions$/m);
  assert.match(out, /transitions \(state:event\), \d+ distinct/);
  let help = '';
  assert.is(await runFuzzCli(['--help'], (s) => (help += s)), 0);
  assert.match(help, /usage: tapstack fuzz/);
  const stderr = process.stderr.write.bind(process.stderr);
  let err = '';
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    assert.is(await runFuzzCli(['--target', 'bsd'], () => {}), 2);
    assert.is(await runFuzzCli(['--runs', 'x'], () => {}), 2);
  } finally {
    process.stderr.write = stderr;
  }
  assert.match(err, /--target: expected stack, kernel or both, not 'bsd'/);
});

test.run();
