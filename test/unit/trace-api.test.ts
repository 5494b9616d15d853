// stack.trace(): records through onRecord and JSON lines, many traces at once on one probe,
// stop() leaving the stack unobserved, a failing onRecord counted and not felt, the filter
// and the colour of text lines.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Stack, TraceRecord } from '../../src/index.ts';
import { TraceFilterError } from '../../src/index.ts';
import { stackPair } from '../helpers/tcp-pair.ts';
import type { VirtualClock } from '../../src/util/clock.ts';

async function settle(clock: VirtualClock, ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
  }
}

/** A connection to B's port 7 sending `bytes`, closed; UDP to port 9 (closed) too. */
async function exchange(clock: VirtualClock, a: Stack, b: Stack, bytes = 5000): Promise<void> {
  const server = b.createServer((s) => {
    s.resume();
    s.on('end', () => s.end());
  });
  server.listen(7);
  const c = a.connect(7, '10.0.0.2');
  c.on('error', () => {});
  c.write(Buffer.alloc(bytes, 1));
  c.end();
  c.resume();
  const u = a.createSocket('udp4');
  u.on('error', () => {});
  u.send('x', 9, '10.0.0.2');
  await settle(clock, 200);
  u.close();
  server.close();
}

function observed(s: Stack): boolean {
  const layers = s.layerCounters();
  return s.ethernet.observer !== null || s.tcp.probe !== null || s.arp.probe !== null || s.icmp.probe !== null || Object.values(layers).some((l) => l.observer !== null);
}

test('stack.trace: meta first, then frames and events; JSON lines are the records', async () => {
  const { clock, a, b } = await stackPair();
  const records: TraceRecord[] = [];
  const lines: string[] = [];
  const trace = a.trace({ format: 'json', output: (l) => lines.push(l), onRecord: (r) => records.push(r) });
  await exchange(clock, a, b);
  trace.stop();
  assert.is(records[0]!.type, 'meta');
  assert.is(trace.records, records.length);
  assert.equal(lines.map((l) => JSON.parse(l)), JSON.parse(JSON.stringify(records)));
  const meta = records[0] as Extract<TraceRecord, { type: 'meta' }>;
  assert.is(meta.address, '10.0.0.1/24');
  assert.is(meta.mac, '02:00:00:00:00:01');
  const syn = records.find((r) => r.type === 'frame' && r.tcp?.flags === 'S');
  assert.ok(syn && syn.type === 'frame' && syn.dir === 'out' && syn.tcp!.rseq === 0 && syn.tcp!.reason === 'syn');
  const synAck = records.find((r) => r.type === 'frame' && r.tcp?.flags === 'S.');
  assert.ok(synAck && synAck.type === 'frame' && synAck.tcp!.rseq === 0 && synAck.tcp!.rack === 1);
  assert.ok(records.some((r) => r.type === 'state' && r.to === 'ESTABLISHED' && r.from === 'SYN-SENT'));
  assert.ok(records.some((r) => r.type === 'icmp-error' && r.dir === 'in' && r.codeName === 'port unreachable' && /^udp 10\.0\.0\.1\.\d+ > 10\.0\.0\.2\.9$/.test(r.about)));
  const n = records.length;
  await exchange(clock, a, b);
  assert.is(records.length, n, 'nothing after stop()');
});

test('many traces at once each get everything; the last stop() unsets the probe', async () => {
  const { clock, a, b } = await stackPair();
  assert.not.ok(observed(a));
  const one: TraceRecord[] = [];
  const two: TraceRecord[] = [];
  const t1 = a.trace({ output: null, onRecord: (r) => one.push(r) });
  const t2 = a.trace({ output: null, onRecord: (r) => two.push(r) });
  await exchange(clock, a, b);
  t1.stop();
  assert.ok(observed(a), 'the second trace still observes');
  assert.equal(one.slice(1), two.slice(1));
  assert.ok(one.length > 20);
  t2.stop();
  t2.stop();
  assert.not.ok(observed(a));
});

test('a probe set with setProbe and traces coexist', async () => {
  const { clock, a, b } = await stackPair();
  let frames = 0;
  a.setProbe({ frame: () => void frames++ });
  const records: TraceRecord[] = [];
  const t = a.trace({ output: null, onRecord: (r) => records.push(r) });
  await exchange(clock, a, b);
  const traced = records.filter((r) => r.type === 'frame').length;
  assert.is(frames, traced);
  t.stop();
  assert.ok(observed(a), 'the setProbe probe stays');
  a.setProbe(null);
  assert.not.ok(observed(a));
});

test('a throwing onRecord is counted, not felt: the exchange completes the same', async () => {
  const { clock, a, b } = await stackPair();
  const t = a.trace({
    output: null,
    onRecord: () => {
      throw new Error('boom');
    },
  });
  await exchange(clock, a, b);
  t.stop();
  const drops = a.ethCounters.drops;
  assert.ok((drops['probe-error: boom'] ?? 0) > 10, JSON.stringify(drops));
  assert.is(a.tcp.counters.toJSON().drops['tcp-port-closed'] ?? 0, 0);
  assert.ok(t.records > 10);
});

test('a bad filter or format is a clear error', async () => {
  const { a } = await stackPair();
  assert.throws(() => a.trace({ filter: 'tcp port', output: null }), (e: unknown) => e instanceof TraceFilterError && /expected a port number/.test((e as Error).message));
  assert.throws(() => a.trace({ format: 'xml' as 'json', output: null }), /trace format/);
  assert.not.ok(observed(a));
});

test('text lines: colour only when asked (or on a TTY without NO_COLOR)', async () => {
  const { clock, a, b } = await stackPair();
  const plain: string[] = [];
  const coloured: string[] = [];
  const t1 = a.trace({ output: (l) => plain.push(l) });
  const t2 = a.trace({ output: (l) => coloured.push(l), colour: true });
  await exchange(clock, a, b);
  t1.stop();
  t2.stop();
  assert.ok(plain.every((l) => !l.includes('\x1b[')));
  assert.ok(coloured.every((l) => l.startsWith('\x1b[') && l.endsWith('\x1b[0m')));
  // The same lines under the colour (the meta lines differ by their wall-clock start).
  assert.equal(
    coloured.slice(1).map((l) => l.replace(/\x1b\[[0-9;]*m/g, '')),
    plain.slice(1),
  );
  // A stream that is a TTY gets colour by default, unless NO_COLOR is set.
  const tty = { isTTY: true, lines: [] as string[], write(s: string) { this.lines.push(s); return true; } };
  const saved = process.env.NO_COLOR;
  delete process.env.NO_COLOR;
  a.trace({ output: tty as unknown as NodeJS.WritableStream }).stop();
  process.env.NO_COLOR = '1';
  a.trace({ output: tty as unknown as NodeJS.WritableStream }).stop();
  if (saved === undefined) delete process.env.NO_COLOR;
  else process.env.NO_COLOR = saved;
  assert.ok(tty.lines[0]!.startsWith('\x1b['));
  assert.ok(!tty.lines[1]!.includes('\x1b['));
  assert.ok(tty.lines[1]!.endsWith('\n'));
});

test.run();
