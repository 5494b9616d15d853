// Link wrappers (LinkDecorator: FaultyLink, CapturingLink) are transparent by default: the
// stack over a wrapped link sees the inner link's offloads and batches, and its frames'
// offload facts, as it would over the inner link itself.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { emitIcmp, ICMP_ECHO_REQUEST } from '../../src/ipv4/icmp-packet.ts';
import { PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { LinkDecorator } from '../../src/link/decorator.ts';
import { parseMac } from '../../src/link/ethernet.ts';
import { FaultyLink } from '../../src/link/faults.ts';
import type { FrameReceiver, Link } from '../../src/link/link.ts';
import { CapturingLink, PcapWriter } from '../../src/link/pcap.ts';
import { emptyRxFrameInfo, emptyTxOffload, type RxFrameInfo, type TxOffload } from '../../src/link/vnet.ts';
import { createStack } from '../../src/stack.ts';
import { ipv4Frame, ipv4Repr } from '../helpers/frames.ts';

/** A link with offloads and batched receive, like a TAP with IFF_VNET_HDR. */
class BatchingOffloadLink implements Link {
  readonly mtu = 1500;
  readonly gsoMaxSize = 65535;
  readonly txOffload: TxOffload = emptyTxOffload();
  batchEnd: (() => void) | null = null;
  sent = 0;
  private receiver: FrameReceiver = () => {};
  send(): void {
    this.sent++;
  }
  setReceiver(r: FrameReceiver): void {
    this.receiver = r;
  }
  setBatchEndHandler(handler: () => void): void {
    this.batchEnd = handler;
  }
  /** The frames arrive in one batch, each with the given offload facts. */
  injectBatch(frames: Buffer[], info: RxFrameInfo | null): void {
    for (const f of frames) this.receiver(f, 0, f.length, info);
    this.batchEnd?.();
  }
  close(): void {}
}

/** A link without batches or offloads. */
class PlainLink implements Link {
  readonly mtu = 1500;
  setReceiver(): void {}
  send(): void {}
  close(): void {}
}

/** An echo request 10.0.0.1 -> 10.0.0.2 whose ICMP checksum is wrong. */
function badChecksumEcho(): Buffer {
  const icmp = Buffer.alloc(8 + 16);
  emitIcmp(icmp, 0, { type: ICMP_ECHO_REQUEST, code: 0, rest: 0x10001, data: Buffer.alloc(16, 7) });
  icmp.writeUInt16BE(icmp.readUInt16BE(2) ^ 0xffff, 2);
  const ip = ipv4Repr({ src: parseIpv4('10.0.0.1')!, dst: parseIpv4('10.0.0.2')!, protocol: PROTO_ICMP });
  return ipv4Frame(parseMac('02:00:00:00:00:02')!, parseMac('02:00:00:00:00:01')!, ip, icmp);
}

const pcapFile = path.join(os.tmpdir(), `tapstack-decorator-${process.pid}.pcap`);
const wrappers: [string, (inner: Link, clock: VirtualClock) => Link][] = [
  ['FaultyLink (faults off)', (inner, clock) => new FaultyLink(inner, clock, { seed: 1 })],
  ['FaultyLink (zero probabilities)', (inner, clock) => new FaultyLink(inner, clock, { seed: 1, drop: 0, duplicate: 0, reorder: 0, corrupt: 0, delay: 0 })],
  ['CapturingLink', (inner) => new CapturingLink(inner, new PcapWriter(pcapFile), () => 0)],
];

for (const [name, wrap] of wrappers) {
  test(`${name} over a batching offloading link: offloads, batches and offload facts reach the stack`, async () => {
    const clock = new VirtualClock();
    const inner = new BatchingOffloadLink();
    const link = wrap(inner, clock);
    const stack = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
    assert.ok(stack.offload);
    assert.is(stack.gsoMaxSize, 65535);
    assert.is(link.txOffload, inner.txOffload);
    assert.ok(inner.batchEnd !== null, 'setBatchEndHandler reached the inner link');
    let ends = 0;
    stack.onBatchEnd(() => ends++);
    const frame = badChecksumEcho();
    // Said valid by the kernel: trusted, so answered despite the checksum (ARP first, queued).
    inner.injectBatch([frame, frame, frame], { ...emptyRxFrameInfo(), checksumValid: true });
    assert.is(ends, 1, 'one batch end for the batch');
    assert.is(stack.icmp.counters.tx, 3);
    inner.injectBatch([frame], null);
    assert.is(ends, 2);
    assert.is(stack.icmp.counters.drops['icmp-bad-checksum'], 1);
    await stack.close();
  });
}

test('a wrapper of a link without batches has none either: the stack ends a batch per frame', async () => {
  const clock = new VirtualClock();
  for (const link of [new FaultyLink(new PlainLink(), clock, { seed: 1 }), new CapturingLink(new PlainLink(), new PcapWriter(pcapFile), () => 0)]) {
    assert.is(link.setBatchEndHandler, undefined);
    assert.is(link.gsoMaxSize, undefined);
    assert.is(link.txOffload, undefined);
    await link.close();
  }
});

test('FaultyLink: a delayed frame is a batch of its own and loses its offload facts; an untouched one keeps them', () => {
  const clock = new VirtualClock();
  const inner = new BatchingOffloadLink();
  const faulty = new FaultyLink(inner, clock, { seed: 3, delay: 1, maxDelayMs: 5, direction: 'rx' });
  const got: (RxFrameInfo | null)[] = [];
  let ends = 0;
  faulty.setReceiver((_buf, _off, _len, info) => got.push(info));
  faulty.setBatchEndHandler!(() => ends++);
  const info = { ...emptyRxFrameInfo(), checksumValid: true };
  inner.injectBatch([badChecksumEcho()], info);
  assert.equal([got.length, ends], [0, 1]);
  clock.runAll();
  assert.equal(got, [null]);
  assert.is(ends, 2);
  faulty.enabled = false;
  inner.injectBatch([badChecksumEcho()], info);
  assert.equal(got, [null, info]);
});

test('a LinkDecorator subclass overriding only send forwards the rest', () => {
  const inner = new BatchingOffloadLink();
  class Counting extends LinkDecorator {
    count = 0;
    override send(buf: Buffer, off: number, len: number): void {
      this.count++;
      super.send(buf, off, len);
    }
  }
  const link = new Counting(inner);
  const seen: (RxFrameInfo | null)[] = [];
  link.setReceiver((_b, _o, _l, info) => seen.push(info));
  const info = emptyRxFrameInfo();
  inner.injectBatch([Buffer.alloc(60)], info);
  link.send(Buffer.alloc(60), 0, 60);
  assert.equal([link.count, inner.sent, seen.length, seen[0] === info, link.mtu, link.gsoMaxSize], [1, 1, 1, true, 1500, 65535]);
});

test.after(() => fs.rmSync(pcapFile, { force: true }));

test.run();
