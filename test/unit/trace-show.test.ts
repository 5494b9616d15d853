// tapstack show: a saved JSON trace read back as text. The text of a JSON golden equals the
// text golden of the same run; a saved trace filtered offline gives the lines the live
// tracer gives with the same filter.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TraceRecord } from '../../src/index.ts';
import { formatRecord } from '../../src/trace/format-text.js';
import { filterRecords, runShow, type ShowIo } from '../../src/trace/show-cli.ts';
import { stackPair } from '../helpers/tcp-pair.ts';
import type { VirtualClock } from '../../src/util/clock.ts';
import type { Stack } from '../../src/index.ts';

const GOLDEN = path.resolve(import.meta.dirname, '../golden');

function io(): ShowIo & { out: string; err: string } {
  const o = { out: '', err: '', isTTY: false, stdout: (t: string) => void (o.out += t), stderr: (t: string) => void (o.err += t) };
  return o;
}

test('show prints a JSON golden as its text golden, line for line', async () => {
  for (const name of ['trace-exchange', 'trace-newreno-no-sack', 'trace-arp']) {
    const o = io();
    const code = await runShow([path.join(GOLDEN, `${name}.jsonl`)], o);
    assert.is(code, 0, o.err);
    assert.fixture(o.out, readFileSync(path.join(GOLDEN, `${name}.txt`), 'utf8'), name);
  }
});

async function settle(clock: VirtualClock, ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
  }
}

/** TCP to port 7 and a refused connection to port 8, UDP to closed port 9, ARP first. */
async function exchange(clock: VirtualClock, a: Stack, b: Stack): Promise<void> {
  const server = b.createServer((s) => {
    s.resume();
    s.on('end', () => s.end());
  });
  server.listen(7);
  const c = a.connect(7, '10.0.0.2');
  c.on('error', () => {});
  c.end(Buffer.alloc(20_000, 1));
  c.resume();
  const refused = a.connect(8, '10.0.0.2');
  refused.on('error', () => {});
  const u = a.createSocket('udp4');
  u.on('error', () => {});
  u.send('x', 9, '10.0.0.2');
  await settle(clock, 300);
  u.close();
  server.close();
}

test('a saved trace filtered offline gives what the live tracer gives with the same filter', async () => {
  const filters = ['arp', 'tcp', 'tcp port 7', 'port 8', 'udp', 'icmp', 'not tcp', 'host 10.0.0.2 and (udp or icmp)', 'src port 7', 'dst host 10.0.0.2 and tcp'];
  const { clock, a, b } = await stackPair();
  const all: TraceRecord[] = [];
  a.trace({ output: null, onRecord: (r) => all.push(r) });
  const live = filters.map((filter) => {
    const lines: string[] = [];
    a.trace({ filter, colour: false, output: (l) => lines.push(l) });
    return lines;
  });
  await exchange(clock, a, b);
  assert.ok(all.some((r) => r.type === 'icmp-error') && all.some((r) => r.type === 'drop') && all.some((r) => r.type === 'arp'), 'the exchange has ICMP errors, drops and ARP');
  const dir = mkdtempSync(path.join(tmpdir(), 'trace-show-'));
  const file = path.join(dir, 't.jsonl');
  writeFileSync(file, all.map((r) => JSON.stringify(r)).join('\n') + '\n');
  for (const [i, filter] of filters.entries()) {
    // Each trace starts with its own meta line (its own wall-clock start): compare after it.
    const expected = live[i]!.slice(1);
    assert.ok(expected.length > 0, `${filter}: the live trace has lines`);
    const offline = filterRecords(all, filter).map((r) => formatRecord(r, false));
    assert.equal(offline.slice(1), expected, filter);
    const o = io();
    assert.is(await runShow([file, ...filter.split(' ')], o), 0, o.err);
    assert.equal(o.out.split('\n').slice(1, -1), expected, `show ${filter}`);
  }
});

test('show: usage and read errors', async () => {
  let o = io();
  assert.is(await runShow([], o), 2);
  assert.match(o.err, /no trace file/);
  o = io();
  assert.is(await runShow(['/nonexistent/t.jsonl'], o), 1);
  assert.match(o.err, /cannot read/);
  o = io();
  assert.is(await runShow([path.join(GOLDEN, 'trace-arp.jsonl'), 'port'], o), 2);
  assert.match(o.err, /expected a port number/);
  const dir = mkdtempSync(path.join(tmpdir(), 'trace-show-'));
  writeFileSync(path.join(dir, 'bad.jsonl'), '{"type":"meta","t":0}\nnot json\n');
  o = io();
  assert.is(await runShow([path.join(dir, 'bad.jsonl')], o), 1);
  assert.match(o.err, /bad\.jsonl:2: not JSON/);
  // A trace still being written ends in half a line: shown up to its last whole record.
  writeFileSync(path.join(dir, 'live.jsonl'), readFileSync(path.join(GOLDEN, 'trace-arp.jsonl'), 'utf8') + '{"type":"frame","t":40');
  o = io();
  assert.is(await runShow([path.join(dir, 'live.jsonl')], o), 0, o.err);
  assert.is(o.out, readFileSync(path.join(GOLDEN, 'trace-arp.txt'), 'utf8'));
  o = io();
  assert.is(await runShow([path.join(GOLDEN, 'trace-arp.jsonl'), '--colour', 'on'], o), 0);
  assert.match(o.out, /\x1b\[/);
});

test.run();
