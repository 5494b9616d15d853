// The craft builder (src/craft): every layer's fields survive build -> dissect; checksums are
// right unless given, and then exactly what was given; hand-made fragments meet the stack's
// reassembly rules; a crafted TCP exchange with a stack over an in-memory link, in virtual time.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  arp,
  dissect,
  encodeIpv4Options,
  ether,
  farSide,
  fragments,
  icmp,
  ipv4,
  type Ipv4Option,
  raw,
  stack,
  tcp,
  type TcpOption,
  udp,
  type Wire,
  wirePair,
} from '../../src/craft/index.ts';
import { createLinkPair, createStack, formatIpv4, type Stack, VirtualClock } from '../../src/index.ts';

/** fast-check's records have no prototype: compared as plain JSON. */
const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
const byte = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':'));
const ip = u32.map(formatIpv4);
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
// Kinds the dissector does not name (known ones come back by name).
const unknownTcpKind = fc.integer({ min: 6, max: 254 }).filter((k) => k !== 8);

const tcpOption: fc.Arbitrary<TcpOption> = fc.oneof(
  u16.map((value) => ({ kind: 'mss' as const, value })),
  fc.integer({ min: 0, max: 14 }).map((value) => ({ kind: 'wscale' as const, value })),
  fc.constant({ kind: 'sackOk' as const }),
  fc.array(fc.tuple(u32, u32), { minLength: 1, maxLength: 3 }).map((blocks) => ({ kind: 'sack' as const, blocks })),
  fc.record({ val: u32, ecr: u32 }).map((t) => ({ kind: 'timestamp' as const, ...t })),
  fc.constant({ kind: 'nop' as const }),
  fc.record({ kind: unknownTcpKind, data: bytes(6) }),
);
const optionLength = (o: TcpOption): number =>
  o.kind === 'nop' || o.kind === 'eol' ? 1 : o.kind === 'mss' ? 4 : o.kind === 'wscale' ? 3 : o.kind === 'sackOk' ? 2 : o.kind === 'sack' ? 2 + 8 * o.blocks.length : o.kind === 'timestamp' ? 10 : 2 + o.data.length;
const tcpOptions = fc.array(tcpOption, { maxLength: 6 }).filter((os) => os.reduce((n, o) => n + optionLength(o), 0) <= 40);

const ipOption: fc.Arbitrary<Ipv4Option> = fc.oneof(
  fc.constant({ kind: 'nop' as const }),
  fc.record({ pointer: fc.integer({ min: 4, max: 40 }), addresses: fc.array(ip, { minLength: 1, maxLength: 3 }) }).map((o) => ({ kind: 'record-route' as const, ...o })),
  fc.record({ pointer: fc.integer({ min: 5, max: 40 }), overflow: fc.integer({ min: 0, max: 15 }), flag: fc.integer({ min: 0, max: 15 }), stamps: fc.array(u32, { maxLength: 3 }) }).map((o) => ({ kind: 'timestamp' as const, ...o })),
  fc.record({ kind: fc.integer({ min: 2, max: 255 }).filter((k) => k !== 7 && k !== 68), data: bytes(4) }),
);
const ipOptions = fc.array(ipOption, { maxLength: 3 }).filter((os) => encodeIpv4Options(os).length <= 40);

test('ether and ARP: every field comes back', () => {
  fc.assert(
    fc.property(mac, mac, fc.record({ op: u16, hwsrc: mac, psrc: ip, hwdst: mac, pdst: ip }), (src, dst, a) => {
      const d = dissect(stack(ether({ src, dst }), arp(a)).build());
      assert.equal(d.ether, { src, dst, type: 0x0806 });
      assert.equal(d.arp, { ...a });
    }),
  );
});

test('IPv4 with options, UDP and a payload: every field comes back, checksums right unless given', () => {
  fc.assert(
    fc.property(
      fc.record({ src: ip, dst: ip, ttl: byte, id: u16, tos: byte, df: fc.boolean(), reserved: fc.boolean() }),
      ipOptions,
      fc.record({ sport: u16, dport: u16 }),
      bytes(64),
      maybe(u16),
      maybe(u16),
      (h, options, ports, payload, ipChecksum, udpChecksum) => {
        const p = stack(
          ether({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' }),
          ipv4({ src: h.src, dst: h.dst, ttl: h.ttl, id: h.id, tos: h.tos, flags: { df: h.df, reserved: h.reserved }, options, checksum: ipChecksum }),
          udp({ ...ports, checksum: udpChecksum }),
          payload,
        );
        const d = dissect(p.build());
        assert.is(d.error, null);
        const v = d.ipv4!;
        assert.equal([v.src, v.dst, v.ttl, v.id, v.tos, v.flags], [h.src, h.dst, h.ttl, h.id, h.tos, { df: h.df, mf: false, reserved: h.reserved }]);
        assert.equal(plain(v.optionList), plain(options));
        assert.is(v.ihl * 4, 20 + v.options.length);
        assert.is(v.proto, 17);
        assert.is(v.totalLength, v.ihl * 4 + 8 + payload.length);
        if (ipChecksum === undefined) assert.ok(v.checksumOk);
        else assert.is(v.checksum, ipChecksum);
        assert.equal(d.udp!.sport, ports.sport);
        assert.is(d.udp!.length, 8 + payload.length);
        if (udpChecksum === undefined) assert.ok(d.udp!.checksumOk && d.udp!.checksum !== 0);
        else assert.is(d.udp!.checksum, udpChecksum);
        assert.equal(d.payload, payload);
      },
    ),
  );
});

test('TCP: every field and option comes back, in order; checksum and data offset as given', () => {
  fc.assert(
    fc.property(
      fc.record({ sport: u16, dport: u16, seq: u32, ack: u32, flags: byte, window: u16, urg: u16 }),
      tcpOptions,
      bytes(40),
      maybe(u16),
      (t, options, payload, checksum) => {
        const d = dissect(stack(ether({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' }), ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }), tcp({ ...t, options, checksum }), payload).build());
        const s = d.tcp!;
        assert.equal({ sport: s.sport, dport: s.dport, seq: s.seq, ack: s.ack, flags: s.flags, window: s.window, urg: s.urg }, { ...t });
        assert.equal(plain(s.options), plain(options));
        assert.is(s.dataOffset, 5 + Math.ceil(options.reduce((n, o) => n + optionLength(o), 0) / 4));
        if (checksum === undefined) assert.ok(s.checksumOk);
        else assert.is(s.checksum, checksum);
        assert.equal(d.payload, payload);
      },
    ),
  );
});

test('more than 40 bytes of options is refused when building', () => {
  const rr = { kind: 'record-route' as const, addresses: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] };
  assert.throws(() => stack(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', options: [rr, rr, rr] })).build(), /more than 40/);
  assert.throws(() => stack(ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }), tcp({ options: Array(5).fill({ kind: 'timestamp', val: 1, ecr: 2 }) })).build(), /more than 40/);
});

test('TCP flags by letters, lengths that lie, a data offset that lies', () => {
  const base = [ether({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' })] as const;
  const sa = dissect(stack(...base, ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }), tcp({ flags: 'SA' })).build());
  assert.is(sa.tcp!.flagText, 'SA');
  assert.is(sa.tcp!.flags, 0x12);
  // A data offset of 6 over a 20-byte header: the first 4 payload bytes read as options.
  const off = dissect(stack(...base, ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }), tcp({ dataOffset: 6 }), Buffer.from([1, 1, 1, 1, 9])).build());
  assert.is(off.tcp!.dataOffset, 6);
  assert.ok(off.tcp!.checksumOk); // the checksum is computed over what is sent
  assert.equal(off.payload, Buffer.from([9]));
  const short = dissect(stack(...base, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', totalLength: 30 }), raw('0123456789abcdef')).build());
  assert.is(short.ipv4!.totalLength, 30);
  assert.equal(String(short.payload), '0123456789');
  const udpLen = dissect(stack(...base, ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }), udp({ length: 10 }), 'abcdef').build());
  assert.is(udpLen.udp!.length, 10);
  assert.equal(String(udpLen.payload), 'ab');
  const long = dissect(stack(...base, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', totalLength: 200 })).build());
  assert.is(long.error, 'ip-bad-length');
});

test('ICMP: type, code, id, seq, a quoted datagram, the checksum as given', () => {
  fc.assert(
    fc.property(fc.record({ type: byte, code: byte, id: u16, seq: u16 }), maybe(u16), bytes(20), (c, checksum, data) => {
      const d = dissect(stack(ether({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' }), ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }), icmp({ ...c, checksum }), data).build());
      const m = d.icmp!;
      assert.equal({ type: m.type, code: m.code, id: m.id, seq: m.seq }, { ...c });
      if (checksum === undefined) assert.ok(m.checksumOk);
      else assert.is(m.checksum, checksum);
      assert.equal(d.payload, data);
    }),
  );
  const quoted = stack(ipv4({ src: '10.0.0.2', dst: '10.0.0.9' }), udp({ sport: 5, dport: 6 }));
  const d = dissect(stack(ether({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' }), ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }), icmp({ type: 3, code: 3, quote: quoted })).build());
  assert.equal(d.payload, quoted.build());
});

// ---------------------------------------------------------------------------------------
// Against a stack: 10.0.0.2 on one end of an in-memory link, the wire (10.0.0.1) on the other.

async function stackAndWire(): Promise<{ clock: VirtualClock; s: Stack; wire: Wire }> {
  const clock = new VirtualClock();
  const [link] = createLinkPair(clock);
  const s = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 3 });
  return { clock, s, wire: farSide(s) };
}

const echoData = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
const echoRequest = stack(ether(), ipv4({ id: 77 }), icmp({ id: 9, seq: 1 }), echoData);
const isEchoReply = (f: { icmp?: { type: number; id: number } }): boolean => f.icmp?.type === 0 && f.icmp.id === 9;

test('fragments, in order or reversed, reassemble in the stack: the echo reply carries the whole payload', async () => {
  for (const reverse of [false, true]) {
    const { s, wire } = await stackAndWire();
    const frames = fragments(wire.build(echoRequest), { size: 32, reverse });
    assert.is(frames.length, 4); // 108 bytes of ICMP in 32-byte pieces
    assert.ok(frames.every((f) => dissect(f).ipv4!.checksumOk));
    wire.send(frames);
    const reply = await wire.expect(isEchoReply, { timeoutMs: 100 });
    assert.equal(reply.payload, echoData);
    await s.close();
  }
});

test('overlapping fragments kill the datagram (the stack follows Linux since 4.19); exact duplicates are ignored', async () => {
  const { s, wire } = await stackAndWire();
  wire.send(fragments(wire.build(echoRequest), { size: 32, overlap: 8 }));
  await wire.expect(isEchoReply, { timeoutMs: 100 }).then(
    () => assert.unreachable('an overlapping datagram was delivered'),
    () => {},
  );
  assert.ok((s.counters().ipv4!.drops['frag-overlap'] ?? 0) >= 1);
  // A fragment sent twice, whole: the second is a duplicate, the datagram still completes.
  const frames = fragments(wire.build(echoRequest.with('ipv4', { id: 78 })), { size: 32 });
  wire.send(frames[0]!, frames[0]!, frames.slice(1));
  const reply = await wire.expect(isEchoReply, { timeoutMs: 100 });
  assert.equal(reply.payload, echoData);
  assert.is(s.counters().ipv4!.drops['frag-duplicate'], 1);
  await s.close();
});

test('an oversized datagram (fragments past 65,535 bytes) is dropped whole', async () => {
  const { s, wire } = await stackAndWire();
  const first = fragments(wire.build(echoRequest.with('ipv4', { flags: { mf: true } })), { size: 96 });
  const beyond = wire.build(stack(ether(), ipv4({ id: 77, proto: 1, fragOffset: 65528 }), raw(Buffer.alloc(100))));
  wire.send(first, beyond);
  await wire.expect(isEchoReply, { timeoutMs: 100 }).then(
    () => assert.unreachable(),
    () => {},
  );
  assert.ok((s.counters().ipv4!.drops['frag-oversize'] ?? 0) >= 1);
  await s.close();
});

test('a crafted handshake, data and RST in virtual time; out-of-window segments get (challenge) ACKs', async () => {
  const { clock, s, wire } = await stackAndWire();
  const received: Buffer[] = [];
  let serverError: string | null = null;
  s.createServer((sock) => {
    sock.on('data', (d: Buffer) => received.push(d));
    sock.on('error', (e: Error & { code?: string }) => (serverError = e.code ?? e.message));
  }).listen(80);
  const c = { sport: 40000, dport: 80 };
  const start = clock.now();
  wire.send(stack(ether(), ipv4(), tcp({ ...c, flags: 'S', seq: 1000, options: [{ kind: 'mss', value: 1400 }] })));
  const synAck = await wire.expect((f) => f.tcp?.flagText === 'SA' && f.tcp.dport === 40000);
  assert.is(synAck.tcp!.ack, 1001);
  assert.ok(clock.now() - start < 10, 'the SYN-ACK came at once, in virtual time');
  const iss = synAck.tcp!.seq;
  const seg = (fields: Parameters<typeof tcp>[0], data: string | Buffer = Buffer.alloc(0)) => stack(ether(), ipv4(), tcp({ ...c, ack: iss + 1, ...fields }), data);
  wire.send(seg({ flags: 'A', seq: 1001 }), seg({ flags: 'PA', seq: 1001 }, 'hello'));
  const ackOfData = await wire.expect((f) => f.tcp?.ack === 1006);
  assert.is(ackOfData.tcp!.seq, iss + 1);

  // Data far outside the receive window: dropped, and answered with an ACK of RCV.NXT (RFC 9293 3.10.7.4).
  wire.send(seg({ flags: 'PA', seq: 1006 + 10_000_000 }, 'bogus'));
  const dup = await wire.expect((f) => f.tcp !== undefined && f.tcp.flagText === 'A');
  assert.is(dup.tcp!.ack, 1006);
  // The application had its 'data' event while expect() ran the clock (event loop turns between timers).
  assert.equal(Buffer.concat(received).toString(), 'hello');
  // An RST in the window but not at RCV.NXT: a challenge ACK, the connection lives (RFC 5961 3.2).
  await wire.expect(() => false, { timeoutMs: 600 }).catch(() => {}); // past the challenge rate limit
  wire.send(seg({ flags: 'R', seq: 1006 + 100 }));
  const challenge = await wire.expect((f) => f.tcp?.flagText === 'A');
  assert.is(challenge.tcp!.ack, 1006);
  assert.is(serverError, null);
  // The RST at RCV.NXT resets it.
  wire.send(seg({ flags: 'R', seq: 1006 }));
  await wire.expect(() => false, { timeoutMs: 10 }).catch(() => {});
  assert.is(serverError, 'ECONNRESET');
  assert.equal(Buffer.concat(received).toString(), 'hello');
  // The far side's MAC was found by the stack's ARP, which the wire answered.
  assert.ok(wire.sent.some((f) => dissect(f).arp?.op === 2));
  await s.close();
});

test("wirePair: the wire learns the stack's MAC from its gratuitous ARP, and says so before it knows it", async () => {
  const clock = new VirtualClock();
  const { link, wire } = wirePair(clock, { peerIp: '10.0.0.2' });
  const s = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  assert.throws(() => wire.send(stack(ether(), ipv4(), icmp())), /MAC is not known yet/);
  await wire.expect((f) => f.arp !== undefined);
  wire.send(stack(ether(), ipv4(), icmp({ id: 5 }), 'x'));
  const reply = await wire.expect((f) => f.icmp?.type === 0);
  assert.is(reply.ether!.src, '02:00:00:00:00:02');
  assert.equal(String(reply.payload), 'x');
  await s.close();
});

test('expect() rejects after its timeout, counted in the virtual clock', async () => {
  const { clock, s, wire } = await stackAndWire();
  const t0 = clock.now();
  const err = await wire.expect(() => false, { timeoutMs: 2500 }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.is(clock.now() - t0, 2500);
  await s.close();
});

test.run();
