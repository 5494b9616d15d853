// Links: two stacks over an in-memory pair, the fault injector, the hub and pcap capture.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { ICMP_ECHO_REQUEST } from '../../src/ipv4/icmp-packet.ts';
import { PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { TX_HEADROOM } from '../../src/ipv4/ipv4.ts';
import { FaultyLink, type FaultOptions } from '../../src/link/faults.ts';
import { LINK_HEADROOM } from '../../src/link/link.ts';
import { createLinkPair, MemoryHub } from '../../src/link/memory.ts';
import { CapturingLink, PcapWriter } from '../../src/link/pcap.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { icmpMessage } from '../helpers/frames.ts';

/** Sends an ICMP echo request from one stack to an address, through its IPv4 layer. */
function ping(from: Stack, dst: string, seq: number, size = 32): string | null {
  const msg = icmpMessage(ICMP_ECHO_REQUEST, 0, (0x77 << 16) | seq, Buffer.alloc(size, seq & 255));
  const buf = Buffer.alloc(TX_HEADROOM + msg.length);
  msg.copy(buf, TX_HEADROOM);
  return from.ipv4.send(PROTO_ICMP, parseIpv4(dst)!, buf, TX_HEADROOM, msg.length);
}

async function pair(clock: VirtualClock, wrap?: (l: ReturnType<typeof createLinkPair>[0]) => import('../../src/link/link.ts').Link) {
  const [la, lb] = createLinkPair(clock);
  const a = await createStack({ link: wrap ? wrap(la) : la, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:0a' });
  const b = await createStack({ link: lb, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:0b' });
  return { a, b };
}

test('two stacks over a link pair resolve each other and exchange echo requests and replies', async () => {
  const clock = new VirtualClock();
  const { a, b } = await pair(clock);
  clock.runAll(10);
  for (let i = 1; i <= 5; i++) assert.is(ping(a, '10.0.0.2', i, 100 * i), null);
  clock.runAll(1000);
  assert.is(b.icmp.counters.rx, 5);
  assert.is(b.icmp.counters.tx, 5, 'b replied to every request');
  assert.is(a.icmp.counters.rx, 5);
  assert.is(a.icmp.counters.drops['icmp-echo-reply-unsolicited'], 5, 'a got every reply (it has no pinger to take them)');
  assert.ok(a.arp.lookup(parseIpv4('10.0.0.2')!)?.equals(b.mac));
  assert.ok(b.arp.lookup(parseIpv4('10.0.0.1')!)?.equals(a.mac));
  // A large request is fragmented by a; b has no reassembler unless the UDP layer gave one.
  await a.close();
  await b.close();
});

test('two stacks over a faulty link: corrupted frames are caught by checksums, never crash a stack', async () => {
  const clock = new VirtualClock();
  let faulty: FaultyLink | null = null;
  const { a, b } = await pair(clock, (l) => (faulty = new FaultyLink(l, clock, { seed: 11, corrupt: 0.3, drop: 0.1, duplicate: 0.1, reorder: 0.1, maxDelayMs: 5 })));
  clock.runAll(10);
  for (let i = 1; i <= 300; i++) {
    ping(a, '10.0.0.2', i);
    clock.advance(50);
  }
  clock.runAll(10_000);
  const f = faulty! as FaultyLink;
  assert.ok(f.counters.corrupted > 0 && f.counters.dropped > 0);
  const replies = a.icmp.counters.drops['icmp-echo-reply-unsolicited'] ?? 0;
  assert.ok(replies > 100, `${replies} replies arrived`);
  for (const s of [a, b])
    for (const [layer, c] of Object.entries(s.counters()))
      for (const reason of Object.keys(c.drops)) assert.not.ok(reason.startsWith('internal-error'), `${layer}: ${reason}`);
  // Checksums caught corruption somewhere (IPv4 header or ICMP).
  const caught = (s: Stack): number => (s.ipv4.counters.drops['ip-bad-checksum'] ?? 0) + (s.icmp.counters.drops['icmp-bad-checksum'] ?? 0);
  assert.ok(caught(a) + caught(b) > 0);
});

/** Sends n numbered frames through a FaultyLink and records what arrives, and when. */
function runFaults(options: FaultOptions, n: number): { counters: FaultyLink['counters']; delivered: string[] } {
  const clock = new VirtualClock();
  const [near, far] = createLinkPair(clock);
  const faulty = new FaultyLink(near, clock, { direction: 'tx', ...options });
  const delivered: string[] = [];
  far.setReceiver((buf, off, len) => delivered.push(`${clock.now()}:${buf.subarray(off, off + len).toString('hex')}`));
  const frame = Buffer.alloc(LINK_HEADROOM + 64);
  for (let i = 0; i < n; i++) {
    frame.writeUInt32BE(i, LINK_HEADROOM + 20);
    faulty.send(frame, LINK_HEADROOM, 64);
    if (i % 10 === 9) clock.advance(1);
  }
  clock.runAll();
  return { counters: { ...faulty.counters }, delivered };
}

test('FaultyLink is deterministic per seed: same counters and same frames at the same times', () => {
  const options = { drop: 0.1, duplicate: 0.1, reorder: 0.1, delay: 0.1, corrupt: 0.1, maxDelayMs: 20 };
  const one = runFaults({ seed: 42, ...options }, 2000);
  const two = runFaults({ seed: 42, ...options }, 2000);
  assert.equal(one.counters, two.counters);
  assert.equal(one.delivered, two.delivered);
  const other = runFaults({ seed: 43, ...options }, 2000);
  assert.not.equal(other.delivered, one.delivered, 'another seed, other faults');
});

test('each fault kind happens at roughly its probability', () => {
  const n = 20_000;
  const within = (count: number, p: number, what: string): void => {
    const sd = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(count - n * p) < 5 * sd, `${what}: ${count} of ${n}, expected about ${n * p}`);
  };
  for (const p of [0.01, 0.1, 0.3]) {
    const d = runFaults({ seed: 5, drop: p }, n);
    within(d.counters.dropped, p, 'drop');
    assert.is(d.delivered.length, n - d.counters.dropped);
    const u = runFaults({ seed: 6, duplicate: p }, n);
    within(u.counters.duplicated, p, 'duplicate');
    assert.is(u.delivered.length, n + u.counters.duplicated);
    const c = runFaults({ seed: 7, corrupt: p }, n);
    within(c.counters.corrupted, p, 'corrupt');
    // A corrupted frame differs from the one sent in exactly one bit, after the Ethernet header.
    // (With corruption alone, frames arrive in the order sent.)
    let flipped = 0;
    c.delivered.forEach((entry, index) => {
      const bytes = Buffer.from(entry.split(':')[1]!, 'hex');
      const expect = Buffer.alloc(64);
      expect.writeUInt32BE(index, 20);
      let bits = 0;
      for (let i = 0; i < 64; i++) bits += popcount(bytes[i]! ^ expect[i]!);
      assert.ok(bits <= 1, `frame ${index}: ${bits} bits differ`);
      if (bits === 1) {
        flipped++;
        for (let i = 0; i < 14; i++) assert.is(bytes[i], 0, 'the Ethernet header is left alone');
      }
    });
    assert.is(flipped, c.counters.corrupted);
    const r = runFaults({ seed: 8, reorder: p, maxDelayMs: 10 }, n);
    within(r.counters.reordered, p, 'reorder');
    const seqs = r.delivered.map((e) => Buffer.from(e.split(':')[1]!, 'hex').readUInt32BE(20));
    let outOfOrder = 0;
    for (let i = 1; i < seqs.length; i++) if (seqs[i]! < seqs[i - 1]!) outOfOrder++;
    assert.ok(outOfOrder > 0, 'some frames overtaken');
    assert.is(seqs.length, n);
    const l = runFaults({ seed: 9, delay: p, maxDelayMs: 10 }, n);
    within(l.counters.delayed, p, 'delay');
  }
});

function popcount(x: number): number {
  let n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}

test('MemoryHub delivers a frame to every other port, not back to its sender', () => {
  const clock = new VirtualClock();
  const hub = new MemoryHub(clock);
  const ports = [hub.connect(), hub.connect(), hub.connect(), hub.connect()];
  const got: string[][] = ports.map(() => []);
  ports.forEach((p, i) => p.setReceiver((buf, off, len) => got[i]!.push(buf.subarray(off, off + len).toString())));
  const send = (i: number, text: string): void => {
    const b = Buffer.from('\0'.repeat(LINK_HEADROOM) + text);
    ports[i]!.send(b, LINK_HEADROOM, text.length);
  };
  send(0, 'from 0');
  send(2, 'from 2');
  clock.runAll();
  assert.equal(got, [['from 2'], ['from 0', 'from 2'], ['from 0'], ['from 0', 'from 2']]);
});

test('three stacks on a hub: each pair resolves and answers', async () => {
  const clock = new VirtualClock();
  const hub = new MemoryHub(clock);
  const stacks = [];
  for (let i = 1; i <= 3; i++) stacks.push(await createStack({ link: hub.connect(), clock, ip: `10.0.0.${i}/24`, mac: `02:00:00:00:00:0${i}` }));
  clock.runAll(10);
  ping(stacks[0]!, '10.0.0.3', 1);
  ping(stacks[1]!, '10.0.0.3', 2);
  ping(stacks[2]!, '10.0.0.1', 3);
  clock.runAll(1000);
  assert.equal(stacks.map((s) => s.icmp.counters.tx), [1, 0, 2]);
  assert.equal(stacks.map((s) => s.icmp.counters.drops['icmp-echo-reply-unsolicited'] ?? 0), [1, 1, 1]);
});

/** Reads a classic pcap file (nanosecond magic, little-endian) into its header and records. */
function readPcap(file: string) {
  const data = readFileSync(file);
  const header = {
    magic: data.readUInt32LE(0),
    major: data.readUInt16LE(4),
    minor: data.readUInt16LE(6),
    snaplen: data.readUInt32LE(16),
    linktype: data.readUInt32LE(20),
  };
  const records: { seconds: number; nanos: number; caplen: number; origlen: number; data: Buffer }[] = [];
  let at = 24;
  while (at < data.length) {
    assert.ok(at + 16 <= data.length, 'whole record header');
    const caplen = data.readUInt32LE(at + 8);
    records.push({ seconds: data.readUInt32LE(at), nanos: data.readUInt32LE(at + 4), caplen, origlen: data.readUInt32LE(at + 12), data: data.subarray(at + 16, at + 16 + caplen) });
    at += 16 + caplen;
    assert.ok(at <= data.length, 'whole record');
  }
  return { header, records };
}

test('PcapWriter writes a pcap file that reads back: global header and every record', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tapstack-pcap-'));
  try {
    const file = path.join(dir, 'a.pcap');
    const w = new PcapWriter(file);
    const frames = [Buffer.alloc(60, 1), Buffer.alloc(1514, 2), Buffer.alloc(14, 3)];
    const stamps = [1_700_000_000_123.456, 1_700_000_001_000, 1_700_000_002_999.999];
    const big = Buffer.concat([Buffer.alloc(5), ...frames]);
    let off = 5;
    frames.forEach((f, i) => {
      w.write(big, off, f.length, stamps[i]);
      off += f.length;
    });
    w.close();
    const { header, records } = readPcap(file);
    assert.equal(header, { magic: 0xa1b23c4d, major: 2, minor: 4, snaplen: 262144, linktype: 1 });
    assert.is(records.length, 3);
    records.forEach((r, i) => {
      assert.ok(r.data.equals(frames[i]!));
      assert.is(r.caplen, frames[i]!.length);
      assert.is(r.origlen, frames[i]!.length);
      assert.is(r.seconds, Math.floor(stamps[i]! / 1000));
      assert.ok(r.nanos < 1e9);
      assert.ok(Math.abs(r.seconds * 1000 + r.nanos / 1e6 - stamps[i]!) < 0.001);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('createStack with pcap captures every frame in and out, in order', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tapstack-pcap-'));
  try {
    const file = path.join(dir, 'b.pcap');
    const clock = new VirtualClock();
    const [la, lb] = createLinkPair(clock);
    const a = await createStack({ link: la, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:0a', pcap: file });
    const b = await createStack({ link: lb, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:0b' });
    assert.ok(a.link instanceof CapturingLink);
    clock.runAll(10);
    ping(a, '10.0.0.2', 1);
    clock.runAll(1000);
    await a.close();
    await b.close();
    const { records } = readPcap(file);
    // Out: gratuitous ARP, ARP request, echo request. In: b's gratuitous ARP, ARP reply, echo reply.
    const kinds = records.map((r) => `${r.data.subarray(6, 12).equals(a.mac) ? 'out' : 'in'}:${r.data.readUInt16BE(12).toString(16)}`);
    assert.equal(kinds, ['out:806', 'in:806', 'out:806', 'in:806', 'out:800', 'in:800']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
