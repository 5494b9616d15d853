// Issue 10 item 10: nothing a link, a capture or a timer does can throw out of the stack. A pcap
// write error (ENOSPC) stops the capture, reported once; --pcap-max-bytes bounds it; every
// timer callback and every per-connection deferred callback is guarded and counted.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARP_REQUEST } from '../../src/arp/arp-packet.ts';
import { parseArgs } from '../../src/cli.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { emitIcmp, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST } from '../../src/ipv4/icmp-packet.ts';
import { PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { BROADCAST_MAC, parseMac } from '../../src/link/ethernet.ts';
import type { PcapSink } from '../../src/link/pcap.ts';
import { createStack, type Stack, type StackOptions } from '../../src/stack.ts';
import { DeferredWork, type DeferredWorker } from '../../src/tcp/deferred.ts';
import { type TimerEntry, TimerQueue } from '../../src/tcp/timers/queue.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { arpFrame, ipv4Frame, ipv4Repr, parseIpv4Frame, RecordingLink } from '../helpers/frames.ts';

const OUR_MAC = parseMac('02:00:00:00:00:02')!;
const OUR_IP = parseIpv4('10.0.0.2')!;
const HOST_MAC = parseMac('02:00:00:00:00:01')!;
const HOST_IP = parseIpv4('10.0.0.1')!;

async function setup(extra: Partial<StackOptions> = {}) {
  const link = new RecordingLink();
  const clock = new VirtualClock();
  const stack = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', ...extra });
  link.take();
  // The host asks for us, so that our replies need no resolution.
  link.inject(arpFrame(BROADCAST_MAC, { op: ARP_REQUEST, senderMac: HOST_MAC, senderIp: HOST_IP, targetMac: Buffer.alloc(6), targetIp: OUR_IP }));
  link.take();
  return { link, clock, stack };
}

function ping(seq: number): Buffer {
  const icmp = Buffer.alloc(8 + 32);
  emitIcmp(icmp, 0, { type: ICMP_ECHO_REQUEST, code: 0, rest: (0x4242 << 16) | seq, data: Buffer.alloc(32, seq) });
  return ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP }), icmp);
}

/** Pings n times; returns how many echo replies came back. */
function pings(link: RecordingLink, n: number): number {
  let replies = 0;
  for (let i = 0; i < n; i++) {
    link.inject(ping(i));
    for (const f of link.take()) {
      const ip = parseIpv4Frame(f);
      if (ip && ip.protocol === PROTO_ICMP && f[ip.payloadOffset] === ICMP_ECHO_REPLY) replies++;
    }
  }
  return replies;
}

function internalErrors(stack: Stack): number {
  let n = 0;
  for (const c of Object.values(stack.counters())) for (const [reason, k] of Object.entries(c.drops)) if (reason.startsWith('internal-error')) n += k;
  return n;
}

/** A sink that takes `room` bytes, then fails as a full disk does. */
class FullDisk implements PcapSink {
  written = 0;
  closed = 0;
  constructor(private readonly room: number) {}
  write(_buf: Uint8Array, _off: number, len: number): void {
    if (this.written + len > this.room) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    this.written += len;
  }
  close(): void {
    this.closed++;
  }
}

test('item 10: a pcap sink that fails with ENOSPC: no throw escapes, reported once, the stack still answers ping', async () => {
  const sink = new FullDisk(24 + 3 * (16 + 74));
  const warnings: string[] = [];
  const { link, stack } = await setup({ pcap: sink, onWarning: (m) => warnings.push(m) });
  assert.is(pings(link, 10), 10, 'every ping answered');
  assert.is(warnings.length, 1, 'reported once');
  assert.match(warnings[0]!, /ENOSPC/);
  assert.is(sink.closed, 1, 'the capture stopped');
  const c = stack.counters().pcap!;
  assert.is(c.drops['pcap-error: ENOSPC'], 1);
  assert.ok(c.drops['pcap-not-captured']! > 0);
  assert.is(internalErrors(stack), 0);
  await stack.close();
  assert.is(sink.closed, 1, 'closed once');
});

test('item 10: a capture to /dev/full (every write ENOSPC) leaves the stack working', async () => {
  if (!fs.existsSync('/dev/full')) return;
  const warnings: string[] = [];
  const { link, stack } = await setup({ pcap: '/dev/full', onWarning: (m) => warnings.push(m) });
  assert.is(pings(link, 3), 3);
  assert.is(warnings.length, 1);
  await stack.close();
});

test('item 10: --pcap-max-bytes is parsed by the CLI and honoured: the capture stops at that size, reported once', async () => {
  const o = parseArgs(['--pcap', 'x.pcap', '--pcap-max-bytes', '1000']);
  assert.ok(o !== 'help');
  assert.is(o.pcapMaxBytes, 1000);
  assert.throws(() => parseArgs(['--pcap-max-bytes', '-5']), /--pcap-max-bytes/);
  assert.throws(() => parseArgs(['--pcap-max-bytes=abc']), /--pcap-max-bytes/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapstack-pcap-'));
  const file = path.join(dir, 'cap.pcap');
  try {
    const warnings: string[] = [];
    const { link, stack } = await setup({ pcap: file, pcapMaxBytes: 1000, onWarning: (m) => warnings.push(m) });
    assert.is(pings(link, 20), 20);
    await stack.close();
    const size = fs.statSync(file).size;
    assert.ok(size <= 1000 && size > 1000 - 16 - 74 - 1, `file size ${size}`);
    assert.is(warnings.length, 1);
    assert.is(stack.counters().pcap!.drops['pcap-max-bytes'], 1);
    const refused = await createStack({ link: new RecordingLink(), ip: '10.0.0.2/24', pcap: file, pcapMaxBytes: 3 }).then(
      () => '',
      (err: Error) => err.message,
    );
    assert.match(refused, /pcapMaxBytes/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('item 10: a timer callback that throws is counted and later timers still run', async () => {
  const { clock, stack } = await setup();
  const ran: number[] = [];
  stack.clock.setTimer(10, () => {
    throw new Error('timer bug');
  });
  stack.clock.setTimer(20, () => ran.push(20));
  clock.advance(30);
  assert.equal(ran, [20]);
  assert.is(stack.counters().ethernet!.drops['internal-error: timer bug'], 1);
});

test("item 10: a layer's timer that throws (ARP's retry into a failing link) is counted; the stack goes on", async () => {
  const { link, clock, stack } = await setup();
  stack.ipv4.send(253, parseIpv4('10.0.0.9')!, Buffer.alloc(60 + 1), 60, 1);
  link.take();
  const send = link.send.bind(link);
  link.send = () => {
    throw new Error('link bug');
  };
  clock.advance(1000); // the retried request meets the bug
  link.send = send;
  assert.is(internalErrors(stack), 1);
  assert.is(pings(link, 1), 1);
});

test("item 10: TimerQueue.run and DeferredWork guard each entry: one's error is counted, the others run", async () => {
  const { clock, stack } = await setup();
  const ran: string[] = [];
  const entry = (name: string, fail: boolean): TimerEntry => ({
    timerAt: 0,
    timerIndex: -1,
    timerSeq: 0,
    onTimer() {
      ran.push(name);
      if (fail) throw new Error(`${name} bug`);
    },
  });
  const q = new TimerQueue(stack.clock);
  q.schedule(entry('a', true), 5);
  q.schedule(entry('b', false), 5);
  q.schedule(entry('c', false), 8);
  clock.advance(10);
  assert.equal(ran, ['a', 'b', 'c']);
  const work = new DeferredWork<DeferredWorker>(stack.clock);
  const worker = (name: string, fail: boolean): DeferredWorker => ({
    batchPending: false,
    onBatchEnd() {
      ran.push(`${name}-batch`);
      if (fail) throw new Error(`${name} batch bug`);
    },
    flushEndOfTurnAck() {
      ran.push(`${name}-ack`);
      if (fail) throw new Error(`${name} ack bug`);
    },
  });
  const x = worker('x', true);
  const y = worker('y', false);
  work.toBatchEnd(x);
  work.toBatchEnd(y);
  work.endBatch();
  work.toEndOfTurn(x);
  work.toEndOfTurn(y);
  clock.advance(1);
  assert.equal(ran.slice(3), ['x-batch', 'y-batch', 'x-ack', 'y-ack']);
  const drops = stack.counters().ethernet!.drops;
  assert.is(drops['internal-error: a bug'], 1);
  assert.is(drops['internal-error: x batch bug'], 1);
  assert.is(drops['internal-error: x ack bug'], 1);
});

test.run();
