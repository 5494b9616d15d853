// A router between two subnets, in virtual time: forwarding both ways (ping, TCP, UDP),
// longest prefix match, and the ICMP errors RFC 1812 asks for (time exceeded, no route,
// fragmentation needed), fragmentation to a smaller MTU, and the same frames for the same seed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { ICMP_ECHO_REQUEST } from '../../src/ipv4/icmp-packet.ts';
import { PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { TX_HEADROOM } from '../../src/ipv4/ipv4.ts';
import { LinkDecorator } from '../../src/link/decorator.ts';
import type { Link } from '../../src/link/link.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { Router } from '../../src/router.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { icmpMessage } from '../helpers/frames.ts';

/** ICMP messages a host receives, as "type/code" (with the rest field for 3/4). */
class IcmpWatch extends LinkDecorator {
  readonly seen: string[] = [];
  frames: string[] = [];
  constructor(inner: Link, private readonly clock: VirtualClock) {
    super(inner);
  }
  protected override receive(buf: Buffer, off: number, len: number, info: null): void {
    this.frames.push(`${this.clock.now()} in ${buf.toString('hex', off, off + len)}`);
    if (len >= 14 + 20 + 8 && buf.readUInt16BE(off + 12) === 0x0800 && buf[off + 23] === PROTO_ICMP) {
      const icmp = off + 14 + (buf[off + 14]! & 15) * 4;
      const type = buf[icmp]!;
      if (type !== 0 && type !== 8) this.seen.push(`${type}/${buf[icmp + 1]}${type === 3 && buf[icmp + 1] === 4 ? ` mtu ${buf.readUInt16BE(icmp + 6)}` : ''}`);
    }
    super.receive(buf, off, len, info);
  }
  override send(buf: Buffer, off: number, len: number): void {
    this.frames.push(`${this.clock.now()} out ${buf.toString('hex', off, off + len)}`);
    super.send(buf, off, len);
  }
}

async function topology(mtuB = 1500, seed = 1) {
  const clock = new VirtualClock();
  const [aLink, r1] = createLinkPair(clock);
  const [bLink, r2] = createLinkPair(clock, { mtu: mtuB });
  const aWatch = new IcmpWatch(aLink, clock);
  const a = await createStack({ link: aWatch, clock, ip: '10.0.1.2/24', gateway: '10.0.1.1', mac: '02:00:00:00:01:02', seed });
  const b = await createStack({ link: bLink, clock, ip: '10.0.2.2/24', gateway: '10.0.2.1', mac: '02:00:00:00:02:02', seed: seed + 1 });
  const router = await Router.create({
    clock,
    seed: seed + 10,
    interfaces: [
      { link: r1, ip: '10.0.1.1/24', mac: '02:00:00:00:01:01' },
      { link: r2, ip: '10.0.2.1/24', mac: '02:00:00:00:02:01' },
    ],
    routes: [{ to: '10.0.8.0/21', via: '10.0.2.2' }],
  });
  return { clock, a, b, router, aWatch };
}

function ping(from: Stack, dst: string, options: { ttl?: number; size?: number; dontFragment?: boolean } = {}): void {
  const msg = icmpMessage(ICMP_ECHO_REQUEST, 0, 0x770001, Buffer.alloc(options.size ?? 32));
  const buf = Buffer.alloc(TX_HEADROOM + msg.length);
  msg.copy(buf, TX_HEADROOM);
  from.ipv4.send(PROTO_ICMP, parseIpv4(dst)!, buf, TX_HEADROOM, msg.length, { ttl: options.ttl, dontFragment: options.dontFragment });
}

async function settle(clock: VirtualClock, rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    clock.runAll(200);
    await new Promise((r) => setImmediate(r));
  }
}

test('hosts on two subnets reach each other through the router: ping, TCP and UDP', async () => {
  const { clock, a, b, router } = await topology();
  ping(a, '10.0.2.2');
  await settle(clock);
  assert.is(b.icmp.counters.tx, 1, 'b answered');
  assert.is(a.icmp.counters.rx, 1, 'a got the reply');
  const server = b.createServer((s) => s.pipe(s));
  server.listen(7);
  const client = a.connect({ host: '10.0.2.2', port: 7 });
  let echoed = 0;
  client.on('data', (d: Buffer) => (echoed += d.length));
  client.write(Buffer.alloc(20_000, 7));
  await settle(clock, 100);
  assert.is(echoed, 20_000);
  const udpGot: number[] = [];
  b.createSocket('udp4', (msg) => udpGot.push(msg.length)).bind(9000);
  a.createSocket('udp4').send(Buffer.alloc(300), 9000, '10.0.2.2');
  await settle(clock);
  assert.equal(udpGot, [300]);
  assert.ok(router.counters.forwarded > 20);
  // The router answers ping on the address of the interface it faces (its other address: not yet).
  ping(a, '10.0.1.1');
  await settle(clock);
  assert.is(router.interfaces[0]!.icmp.counters.tx, 1);
  ping(a, '10.0.2.1');
  await settle(clock);
  assert.is(router.counters.otherInterface, 1);
  client.destroy();
  await router.close();
});

test('TTL 1: not forwarded, Time Exceeded back to the sender (RFC 1812 5.3.1)', async () => {
  const { clock, a, b, router, aWatch } = await topology();
  ping(a, '10.0.2.2', { ttl: 1 });
  await settle(clock);
  assert.is(b.icmp.counters.rx, 0);
  assert.is(router.counters.ttlExceeded, 1);
  assert.equal(aWatch.seen, ['11/0']);
  ping(a, '10.0.2.2', { ttl: 2 });
  await settle(clock);
  assert.is(b.icmp.counters.rx, 1, 'TTL 2 gets through (1 left at b)');
  await router.close();
});

test('no route: Destination Unreachable (net); a static route by longest prefix', async () => {
  const { clock, router, a, aWatch } = await topology();
  ping(a, '10.0.99.9');
  await settle(clock);
  assert.is(router.counters.noRoute, 1);
  assert.equal(aWatch.seen, ['3/0']);
  assert.is(router.lookup(parseIpv4('10.0.13.1')!)?.via, parseIpv4('10.0.2.2'), '10.0.8.0/21 holds 10.0.13.1');
  assert.is(router.lookup(parseIpv4('10.0.2.7')!)?.via, null, 'connected');
  assert.is(router.lookup(parseIpv4('10.0.16.1')!), null);
  await router.close();
});

test('a smaller MTU on the way: DF gets Fragmentation Needed with the MTU (RFC 1191), else the datagram is cut and b reassembles it', async () => {
  const { clock, a, b, router, aWatch } = await topology(1000);
  ping(a, '10.0.2.2', { size: 1400, dontFragment: true });
  await settle(clock);
  assert.equal(aWatch.seen, ['3/4 mtu 1000']);
  assert.is(b.icmp.counters.rx, 0);
  ping(a, '10.0.2.2', { size: 1400 });
  await settle(clock);
  assert.is(router.counters.fragmented, 1);
  assert.is(router.counters.fragments, 2);
  assert.is(b.icmp.counters.rx, 1, 'b reassembled and answered');
  assert.is(a.icmp.counters.rx, 2, 'the error, then the reply (b fragments it itself)');
  await router.close();
});

test('the same seed gives the same frames across the router, byte for byte', async () => {
  const run = async (): Promise<string[]> => {
    const { clock, a, b, router, aWatch } = await topology(1500, 5);
    b.createServer((s) => s.pipe(s)).listen(7);
    const client = a.connect({ host: '10.0.2.2', port: 7 });
    client.write(Buffer.alloc(8000, 1));
    await settle(clock, 60);
    client.destroy();
    await settle(clock, 5);
    await router.close();
    return aWatch.frames;
  };
  const first = await run();
  assert.ok(first.length > 10, `${first.length} frames`);
  assert.equal(await run(), first);
});

test.run();
