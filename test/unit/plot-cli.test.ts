// `tapstack plot`: reads a JSON-lines trace, picks the connection (the busiest, or --conn),
// writes one SVG; fails clearly (1: the trace or the output, 2: usage). In process through
// runPlot, and once through bin/tapstack for the dispatch in src/cli.ts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runPlot } from '../../src/teach/plot-cli.ts';
import type { TraceRecord } from '../../src/trace/schema.ts';
import { countClass, xmlErrors } from '../helpers/svg-check.ts';
import { recordLossyTransfer } from '../helpers/recorded-transfer.ts';
import { lossyTransfer, mergeTraces } from '../helpers/trace-records.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'tapstack-plot-'));
const big = lossyTransfer({ segments: 30, lost: [12] });
const small = lossyTransfer({ segments: 3, clientPort: 40001, serverPort: 80, start: 25 });
const lines = (records: TraceRecord[]): string => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
const tracePath = path.join(dir, 'two.jsonl');
// The small connection's records first in the file: the default must still be the busy one.
writeFileSync(tracePath, lines(mergeTraces(small.client, big.client.slice(1))));

async function plot(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runPlot(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

test('default: the connection that moved the most bytes, one SVG with the three charts', async () => {
  const r = await plot(tracePath);
  assert.is(r.code, 0, r.err);
  assert.ok(r.out.includes('Connection 10.0.0.1:40000 \u2192 10.0.0.2:7'));
  assert.ok(r.out.includes('class="chart time-sequence"') && r.out.includes('class="chart cwnd"') && r.out.includes('class="chart rtt"'));
  assert.is(countClass(r.out, 'seg retransmit'), 1);
  assert.match(r.out, /10\.000 ms to \d+\.\d{3} ms/);
  assert.equal(xmlErrors([{ name: 'plot', svg: r.out }]), []);
});

test('--conn: either end, or the whole id; -o writes the file', async () => {
  for (const conn of ['10.0.0.2:80', '10.0.0.1:40001', '10.0.0.1:40001>10.0.0.2:80']) {
    const out = path.join(dir, 'small.svg');
    const r = await plot(tracePath, '--conn', conn, '-o', out);
    assert.is(r.code, 0, r.err);
    assert.is(r.out, '');
    const svg = readFileSync(out, 'utf8');
    assert.ok(svg.includes('Connection 10.0.0.1:40001 \u2192 10.0.0.2:80'), conn);
  }
  const r = await plot(`--conn=10.0.0.2:7`, tracePath, '--output=-');
  assert.is(r.code, 0);
  assert.ok(r.out.includes('10.0.0.2:7'));
});

test('failures: no such connection lists those there are; empty, unreadable, bad lines (with their number)', async () => {
  const none = await plot(tracePath, '--conn', '10.0.0.9:1');
  assert.is(none.code, 1);
  assert.ok(none.err.includes("no connection matches '10.0.0.9:1'"));
  assert.ok(none.err.includes('10.0.0.1:40000>10.0.0.2:7') && none.err.includes('10.0.0.1:40001>10.0.0.2:80'));

  const empty = path.join(dir, 'empty.jsonl');
  writeFileSync(empty, '\n');
  const e = await plot(empty);
  assert.is(e.code, 1);
  assert.ok(e.err.includes('empty trace'));

  const udpOnly = path.join(dir, 'udp.jsonl');
  writeFileSync(udpOnly, lines([big.client[0]!]));
  const u = await plot(udpOnly);
  assert.is(u.code, 1);
  assert.ok(u.err.includes('no TCP connection'));

  const missing = await plot(path.join(dir, 'nope.jsonl'));
  assert.is(missing.code, 1);
  assert.ok(missing.err.includes('cannot read') && missing.err.includes('ENOENT'));

  const bad = path.join(dir, 'bad.jsonl');
  writeFileSync(bad, `${JSON.stringify(big.client[0])}\n\n{"type": "frame", "t": 1,\n`);
  const b = await plot(bad);
  assert.is(b.code, 1);
  assert.match(b.err, /bad\.jsonl:3: not JSON/);

  const frame = big.client.find((r) => r.type === 'frame')!;
  writeFileSync(bad, `${JSON.stringify({ ...frame, tcp: { ...(frame.type === 'frame' ? frame.tcp : {}), rseq: 'one' } })}\n`);
  const f = await plot(bad);
  assert.is(f.code, 1);
  assert.match(f.err, /bad\.jsonl:1: bad frame record: tcp\.rseq is not a number/);

  writeFileSync(bad, '[1, 2]\n');
  assert.match((await plot(bad)).err, /bad\.jsonl:1: not a trace record/);

  const out = await plot(tracePath, '-o', path.join(dir, 'no-such-dir', 'x.svg'));
  assert.is(out.code, 1);
  assert.ok(out.err.includes('cannot write'));
});

test('records of types this version does not know are skipped', async () => {
  const future = path.join(dir, 'future.jsonl');
  writeFileSync(future, `{"type":"hologram","t":1,"whatever":[1]}\n` + lines(small.client));
  const r = await plot(future);
  assert.is(r.code, 0, r.err);
  assert.ok(r.out.includes('10.0.0.1:40001'));
});

test('usage errors exit 2; --help exits 0', async () => {
  for (const argv of [[], ['--conn'], ['a.jsonl', 'b.jsonl'], ['a.jsonl', '--colour'], ['a.jsonl', '-o']]) {
    const r = await plot(...argv);
    assert.is(r.code, 2, argv.join(' '));
    assert.ok(r.err.includes('usage: tapstack plot'), argv.join(' '));
  }
  const h = await plot('--help');
  assert.is(h.code, 0);
  assert.ok(h.out.includes('--conn ADDR:PORT'));
});

test('the tapstack command dispatches plot (bin/tapstack)', () => {
  const out = path.join(dir, 'cli.svg');
  const r = spawnSync(path.join(ROOT, 'bin/tapstack'), ['plot', tracePath, '-o', out], { encoding: 'utf8', timeout: 60_000 });
  assert.is(r.status, 0, r.stderr);
  assert.ok(readFileSync(out, 'utf8').includes('class="chart time-sequence"'));
  const u = spawnSync(path.join(ROOT, 'bin/tapstack'), ['plot'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(u.status, 2);
});

// The picture in the README and the tutorial, drawn by the command from a trace of the real
// stack (stack.trace over two stacks in virtual time, netem losing 3%, seeded):
// PLOT_EXAMPLE_UPDATE=1 records the trace again and redraws, when either changes on purpose.
test('docs/plot-example.svg is what tapstack plot draws from test/fixtures/plot-trace.jsonl', async () => {
  const fixture = path.join(ROOT, 'test/fixtures/plot-trace.jsonl');
  if (process.env.PLOT_EXAMPLE_UPDATE === '1') {
    const { records } = await recordLossyTransfer({ seed: 3, bytes: 100_000, loss: 0.03 });
    writeFileSync(fixture, lines(records));
  }
  const r = await plot(fixture);
  assert.is(r.code, 0, r.err);
  const svg = r.out.replace(fixture, 'test/fixtures/plot-trace.jsonl');
  const example = path.join(ROOT, 'docs/plot-example.svg');
  if (process.env.PLOT_EXAMPLE_UPDATE === '1') writeFileSync(example, svg);
  assert.ok(readFileSync(example, 'utf8') === svg, 'docs/plot-example.svg is stale: PLOT_EXAMPLE_UPDATE=1 npx tsx test/unit/plot-cli.test.ts');
  assert.ok(countClass(svg, 'seg retransmit') >= 1);
  assert.equal(xmlErrors([{ name: 'example', svg }]), []);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
