// Checksum trust (offloads: the kernel verified the transport checksum) belongs to one frame
// only. An application handler that throws while such a frame is delivered must not leave it
// behind: a later frame with a bad checksum and no offload facts is still checked and dropped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { PROTO_UDP } from '../../src/ipv4/ipv4-packet.ts';
import { parseMac } from '../../src/link/ethernet.ts';
import type { FrameReceiver, Link } from '../../src/link/link.ts';
import { createLinkPair, type MemoryLink } from '../../src/link/memory.ts';
import { emptyRxFrameInfo, type RxFrameInfo } from '../../src/link/vnet.ts';
import { createStack } from '../../src/stack.ts';
import { ipv4Frame, ipv4Repr } from '../helpers/frames.ts';

/** A link whose received frames carry "checksum valid" (DATA_VALID) while `trusted` is set. */
class TrustingLink implements Link {
  readonly mtu: number;
  trusted = true;
  private receiver: FrameReceiver = () => {};
  private readonly info: RxFrameInfo = emptyRxFrameInfo();
  constructor(private readonly inner: MemoryLink) {
    this.mtu = inner.mtu;
    inner.setReceiver((buf, off, len) => {
      this.info.checksumValid = this.trusted;
      this.receiver(buf, off, len, this.trusted ? this.info : null);
    });
  }
  send(buf: Buffer, off: number, len: number): void {
    this.inner.send(buf, off, len);
  }
  setReceiver(r: FrameReceiver): void {
    this.receiver = r;
  }
  setBatchEndHandler(handler: () => void): void {
    this.inner.setBatchEndHandler(handler);
  }
  close(): void {
    this.inner.close();
  }
}

/** A UDP datagram 10.0.0.1:5000 -> 10.0.0.2:7 whose checksum is wrong. */
function badChecksumUdp(): Buffer {
  const udp = Buffer.alloc(8 + 4, 0x61);
  udp.writeUInt16BE(5000, 0);
  udp.writeUInt16BE(7, 2);
  udp.writeUInt16BE(udp.length, 4);
  udp.writeUInt16BE(0x1234, 6);
  const ip = ipv4Repr({ src: parseIpv4('10.0.0.1')!, dst: parseIpv4('10.0.0.2')!, protocol: PROTO_UDP });
  return ipv4Frame(parseMac('02:00:00:00:00:02')!, parseMac('02:00:00:00:00:01')!, ip, udp);
}

test("a 'data' handler that throws on a trusted frame leaves no trust behind", async () => {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock, { latencyMs: 1 });
  const trusting = new TrustingLink(lb);
  const a = await createStack({ link: la, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const b = await createStack({ link: trusting, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  clock.advance(10);
  // The exception goes up through the receive path (counted by the stack), or is rethrown
  // outside it as an uncaught exception (Node's way): either way it must leave no trust.
  const uncaught: string[] = [];
  const onUncaught = (err: Error): void => void uncaught.push(err.message);
  process.on('uncaughtException', onUncaught);
  try {
    const server = b.createServer((socket) => {
      socket.on('data', () => {
        throw new Error('application bug');
      });
    });
    server.listen(80);
    const client = a.connect(80, '10.0.0.2');
    client.on('error', () => {});
    clock.advance(100);
    // Let the server socket start flowing, so that data is emitted from inside the receive path.
    await new Promise((resolve) => setImmediate(resolve));
    client.write('hello');
    clock.advance(100);
    await new Promise((resolve) => setImmediate(resolve));
    const counted = b.ethCounters.drops['internal-error: application bug'] ?? 0;
    assert.is(counted + uncaught.filter((m) => m === 'application bug').length, 1, 'the handler threw once');

    trusting.trusted = false;
    const frame = badChecksumUdp();
    la.send(frame, 0, frame.length);
    clock.advance(10);
    assert.is(b.udp.counters.drops['udp-bad-checksum'], 1);
    client.destroy();
    server.close();
    clock.runAll();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});

test('a protocol handler that throws on a trusted frame leaves no trust behind', async () => {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock, { latencyMs: 1 });
  const trusting = new TrustingLink(lb);
  await createStack({ link: la, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const b = await createStack({ link: trusting, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  clock.advance(10);
  const udp = b.udp;
  let first = true;
  // A handler in front of UDP's that throws once, on the trusted frame, then hands on.
  b.ipv4.register(
    PROTO_UDP,
    (...args: Parameters<typeof udp.receive>) => {
      if (first) {
        first = false;
        throw new Error('handler bug');
      }
      udp.receive(...args);
    },
    undefined,
    { checksumOffload: true },
  );
  const frame = badChecksumUdp();
  la.send(frame, 0, frame.length);
  clock.advance(10);
  assert.is(b.ethCounters.drops['internal-error: handler bug'], 1);
  trusting.trusted = false;
  la.send(frame, 0, frame.length);
  clock.advance(10);
  assert.is(b.udp.counters.drops['udp-bad-checksum'], 1);
});

test.run();
