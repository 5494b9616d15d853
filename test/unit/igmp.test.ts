// Multicast in virtual time: IGMP reports on join and leave (v3, and v2 once a v2 querier is
// heard), answers to queries within their max response time, the Ethernet and IPv4 filters
// that let a group's traffic in only while joined, source filters, IP_MULTICAST_LOOP and TTL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatIpv4, parseIpv4 } from '../../src/ipv4/address.ts';
import {
  ALLOW_NEW_SOURCES,
  BLOCK_OLD_SOURCES,
  CHANGE_TO_EXCLUDE,
  CHANGE_TO_INCLUDE,
  IGMP_QUERY,
  IGMP_V2_LEAVE,
  IGMP_V2_REPORT,
  IGMP_V3_REPORT,
  MODE_IS_EXCLUDE,
  MODE_IS_INCLUDE,
  PROTO_IGMP,
} from '../../src/ipv4/igmp-packet.ts';
import { PROTO_UDP } from '../../src/ipv4/ipv4-packet.ts';
import { formatMac, parseMac } from '../../src/link/ethernet.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { createStack, type StackOptions } from '../../src/stack.ts';
import { emitUdpHeader, UDP_HEADER_LEN } from '../../src/udp/udp-packet.ts';
import { internetChecksum } from '../../src/util/checksum.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { arpFrame, ipv4Frame, ipv4Repr, parseIpv4Frame, RecordingLink } from '../helpers/frames.ts';
import { ARP_REQUEST } from '../../src/arp/arp-packet.ts';
import { BROADCAST_MAC } from '../../src/link/ethernet.ts';

const OUR_MAC = parseMac('02:00:00:00:00:02')!;
const HOST_MAC = parseMac('02:00:00:00:00:01')!;
const HOST_IP = parseIpv4('10.0.0.1')!;
const OUR_IP = parseIpv4('10.0.0.2')!;
const GROUP = '239.1.2.3';
const GROUP_IP = parseIpv4(GROUP)!;
const ALL_HOSTS_MAC = parseMac('01:00:5e:00:00:01')!;

const ticks = () => new Promise<void>((resolve) => setImmediate(resolve));

async function setup(options: Partial<StackOptions> = {}) {
  const link = new RecordingLink();
  const clock = new VirtualClock();
  const stack = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 5, ...options });
  const request = { op: ARP_REQUEST, senderMac: HOST_MAC, senderIp: HOST_IP, targetMac: Buffer.alloc(6), targetIp: OUR_IP };
  link.inject(arpFrame(BROADCAST_MAC, request));
  link.take();
  return { link, clock, stack };
}

interface Report {
  at: number;
  dstMac: string;
  dst: string;
  ttl: number;
  routerAlert: boolean;
  type: number;
  group?: string;
  records?: { type: number; group: string; sources: string[] }[];
}

/** The IGMP messages among the frames the stack sent. */
function igmpSent(frames: Buffer[], at: number): Report[] {
  const out: Report[] = [];
  for (const f of frames) {
    const ip = parseIpv4Frame(f);
    if (!ip || ip.protocol !== PROTO_IGMP) continue;
    const o = ip.payloadOffset;
    assert.is(internetChecksum(f, o, ip.payloadLength), 0, 'IGMP checksum');
    const r: Report = {
      at,
      dstMac: formatMac(f, 0),
      dst: formatIpv4(ip.dst),
      ttl: ip.ttl,
      routerAlert: ip.headerLength === 24 && f[14 + 20] === 0x94,
      type: f[o]!,
    };
    if (r.type === IGMP_V3_REPORT) {
      r.records = [];
      let at2 = o + 8;
      for (let i = 0; i < f.readUInt16BE(o + 6); i++) {
        const n = f.readUInt16BE(at2 + 2);
        const sources: string[] = [];
        for (let k = 0; k < n; k++) sources.push(formatIpv4(f.readUInt32BE(at2 + 8 + 4 * k)));
        r.records.push({ type: f[at2]!, group: formatIpv4(f.readUInt32BE(at2 + 4)), sources });
        at2 += 8 + 4 * n;
      }
    } else r.group = formatIpv4(f.readUInt32BE(o + 4));
    out.push(r);
  }
  return out;
}

/** Runs the clock in steps of 10 ms for `ms`, collecting the IGMP messages sent, with their times. */
function runCollect(clock: VirtualClock, link: RecordingLink, ms: number): Report[] {
  const out: Report[] = [];
  const start = clock.now();
  for (let t = 0; t <= ms; t += 10) {
    out.push(...igmpSent(link.take(), clock.now() - start));
    clock.advance(10);
  }
  out.push(...igmpSent(link.take(), clock.now() - start));
  return out;
}

function queryFrame(version: 2 | 3, group: number, maxRespCode: number, sources: number[] = [], dst = group || 0xe0000001): Buffer {
  const len = version === 2 ? 8 : 12 + 4 * sources.length;
  const m = Buffer.alloc(len);
  m[0] = IGMP_QUERY;
  m[1] = maxRespCode;
  m.writeUInt32BE(group >>> 0, 4);
  if (version === 3) {
    m[8] = 2; // QRV
    m[9] = 125;
    m.writeUInt16BE(sources.length, 10);
    sources.forEach((s, i) => m.writeUInt32BE(s, 12 + 4 * i));
  }
  m.writeUInt16BE(internetChecksum(m, 0, len), 2);
  const mac = Buffer.from([0x01, 0x00, 0x5e, (dst >>> 16) & 0x7f, (dst >>> 8) & 0xff, dst & 0xff]);
  return ipv4Frame(mac, HOST_MAC, ipv4Repr({ src: HOST_IP, dst, protocol: PROTO_IGMP, ttl: 1, options: Buffer.from([0x94, 4, 0, 0]) }), m);
}

function groupDatagram(port: number, data: string, group = GROUP_IP, src = HOST_IP): Buffer {
  const payload = Buffer.from(data);
  const d = Buffer.alloc(UDP_HEADER_LEN + payload.length);
  payload.copy(d, UDP_HEADER_LEN);
  emitUdpHeader(d, 0, src, group, 5000, port, payload.length);
  const mac = Buffer.from([0x01, 0x00, 0x5e, (group >>> 16) & 0x7f, (group >>> 8) & 0xff, group & 0xff]);
  return ipv4Frame(mac, HOST_MAC, ipv4Repr({ src, dst: group, protocol: PROTO_UDP, ttl: 1 }), d);
}

async function boundSocket(stack: Awaited<ReturnType<typeof setup>>['stack'], port: number) {
  const s = stack.dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const got: string[] = [];
  s.on('message', (m, r) => got.push(`${m}:${r.address}`));
  s.bind(port);
  await ticks();
  return { s, got };
}

test('addMembership sends an IGMPv3 TO_EX {} report to 224.0.0.22 (TTL 1, Router Alert), retransmitted once within 1 s', async () => {
  const { link, clock, stack } = await setup();
  const { s } = await boundSocket(stack, 5353);
  s.addMembership(GROUP);
  const reports = runCollect(clock, link, 3000);
  assert.is(reports.length, 2, JSON.stringify(reports));
  for (const r of reports) {
    assert.is(r.type, IGMP_V3_REPORT);
    assert.is(r.dst, '224.0.0.22');
    assert.is(r.dstMac, '01:00:5e:00:00:16');
    assert.is(r.ttl, 1);
    assert.ok(r.routerAlert);
    assert.equal(r.records, [{ type: CHANGE_TO_EXCLUDE, group: GROUP, sources: [] }]);
  }
  assert.is(reports[0]!.at, 0, 'the first at once');
  assert.ok(reports[1]!.at <= 1000, 'the retransmission within the unsolicited report interval');
  // A second socket joining the same group changes nothing the routers need to know.
  const { s: s2 } = await boundSocket(stack, 5353);
  s2.addMembership(GROUP);
  assert.equal(runCollect(clock, link, 3000), []);
  s.dropMembership(GROUP);
  assert.equal(runCollect(clock, link, 3000), []);
  s2.dropMembership(GROUP);
  const leaves = runCollect(clock, link, 3000);
  assert.is(leaves.length, 2);
  for (const r of leaves) assert.equal(r.records, [{ type: CHANGE_TO_INCLUDE, group: GROUP, sources: [] }]);
});

test('a general query is answered once, IS_EX, at a random time within its max response time; a group query for the group', async () => {
  const { link, clock, stack } = await setup();
  const { s } = await boundSocket(stack, 5353);
  s.addMembership(GROUP);
  runCollect(clock, link, 3000);
  link.inject(queryFrame(3, 0, 50)); // 5 s
  const answers = runCollect(clock, link, 6000);
  assert.is(answers.length, 1, JSON.stringify(answers));
  assert.ok(answers[0]!.at <= 5000);
  assert.equal(answers[0]!.records, [{ type: MODE_IS_EXCLUDE, group: GROUP, sources: [] }]);
  // A query for another group is not ours to answer; for ours it is.
  link.inject(queryFrame(3, parseIpv4('239.9.9.9')!, 10));
  assert.equal(runCollect(clock, link, 2000), []);
  assert.is(stack.ethCounters.drops['eth-multicast-filtered'], 1);
  link.inject(queryFrame(3, GROUP_IP, 10));
  const specific = runCollect(clock, link, 2000);
  assert.is(specific.length, 1);
  assert.ok(specific[0]!.at <= 1000);
  assert.equal(specific[0]!.records, [{ type: MODE_IS_EXCLUDE, group: GROUP, sources: [] }]);
});

test('the same seed answers at the same times', async () => {
  const times: number[][] = [];
  for (let run = 0; run < 2; run++) {
    const { link, clock, stack } = await setup();
    const { s } = await boundSocket(stack, 5353);
    s.addMembership(GROUP);
    const first = runCollect(clock, link, 3000);
    link.inject(queryFrame(3, 0, 100));
    times.push([...first, ...runCollect(clock, link, 11000)].map((r) => r.at));
  }
  assert.equal(times[0], times[1]);
});

test('a v2 query turns the host to IGMPv2 (RFC 3376 7.2.1): v2 reports to the group, a leave to 224.0.0.2', async () => {
  const { link, clock, stack } = await setup();
  const { s } = await boundSocket(stack, 5353);
  link.inject(queryFrame(2, 0, 100));
  assert.is(stack.igmp.version, 2);
  s.addMembership(GROUP);
  const reports = runCollect(clock, link, 11000);
  assert.is(reports.length, 2);
  for (const r of reports) {
    assert.is(r.type, IGMP_V2_REPORT);
    assert.is(r.dst, GROUP);
    assert.is(r.dstMac, '01:00:5e:01:02:03');
    assert.is(r.group, GROUP);
  }
  // The query's answer: one v2 report within 10 s.
  link.inject(queryFrame(2, 0, 100));
  const answer = runCollect(clock, link, 10000);
  assert.is(answer.length, 1);
  assert.is(answer[0]!.type, IGMP_V2_REPORT);
  s.dropMembership(GROUP);
  const leave = igmpSent(link.take(), 0);
  assert.is(leave.length, 1);
  assert.is(leave[0]!.type, IGMP_V2_LEAVE);
  assert.is(leave[0]!.dst, '224.0.0.2');
  assert.is(leave[0]!.group, GROUP);
  // 260 s without a v2 querier: back to v3.
  clock.advance(261_000);
  assert.is(stack.igmp.version, 3);
});

test('v2: another member\'s report suppresses ours; then the leave is not ours to send (RFC 2236 3)', async () => {
  const { link, clock, stack } = await setup({ igmp: { forceVersion: 2 } });
  const { s } = await boundSocket(stack, 5353);
  s.addMembership(GROUP);
  runCollect(clock, link, 11000);
  link.inject(queryFrame(2, 0, 100));
  const m = Buffer.alloc(8);
  m[0] = IGMP_V2_REPORT;
  m.writeUInt32BE(GROUP_IP, 4);
  m.writeUInt16BE(internetChecksum(m, 0, 8), 2);
  link.inject(ipv4Frame(parseMac('01:00:5e:01:02:03')!, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: GROUP_IP, protocol: PROTO_IGMP, ttl: 1 }), m));
  assert.equal(runCollect(clock, link, 11000), []);
  s.dropMembership(GROUP);
  assert.equal(igmpSent(link.take(), 0), []);
});

test('group traffic comes in only while joined: the Ethernet filter, then IPv4, then every socket on the port', async () => {
  const { link, stack } = await setup();
  const { s: a, got: gotA } = await boundSocket(stack, 6000);
  const { got: gotB } = await boundSocket(stack, 6000); // bound, not joined: IP_MULTICAST_ALL
  const { got: gotC } = await boundSocket(stack, 6001);
  link.inject(groupDatagram(6000, 'before'));
  assert.is(stack.ethCounters.drops['eth-multicast-filtered'], 1);
  a.addMembership(GROUP);
  link.inject(groupDatagram(6000, 'joined'));
  link.inject(groupDatagram(6002, 'no socket'));
  assert.equal(gotA, ['joined:10.0.0.1']);
  assert.equal(gotB, ['joined:10.0.0.1']);
  assert.equal(gotC, []);
  assert.is(stack.udp.counters.drops['udp-multicast-no-socket'], 1);
  // Another group with the same MAC (the 23 bits): Ethernet lets it in, IPv4 does not.
  link.inject(groupDatagram(6000, 'alias', parseIpv4('239.129.2.3')!));
  assert.is(stack.ipv4.counters.drops['ip-multicast-not-joined'], 1);
  a.dropMembership(GROUP);
  link.inject(groupDatagram(6000, 'after'));
  assert.is(stack.ethCounters.drops['eth-multicast-filtered'], 2);
  assert.equal(gotA, ['joined:10.0.0.1']);
  // The all-systems group is always joined; no ICMP answers a group.
  link.inject(ipv4Frame(ALL_HOSTS_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: 0xe0000001, protocol: PROTO_UDP }), Buffer.alloc(8)));
  assert.is(stack.ethCounters.drops['eth-multicast-filtered'], 2);
});

test('source-specific membership: IGMPv3 ALLOW/BLOCK records, and only the listed sources come in', async () => {
  const { link, clock, stack } = await setup();
  const { s, got } = await boundSocket(stack, 7000);
  const SSM = '232.1.1.1';
  s.addSourceSpecificMembership('10.0.0.1', SSM);
  let reports = runCollect(clock, link, 3000);
  assert.is(reports.length, 2);
  assert.equal(reports[0]!.records, [{ type: ALLOW_NEW_SOURCES, group: SSM, sources: ['10.0.0.1'] }]);
  link.inject(groupDatagram(7000, 'listed', parseIpv4(SSM)!, HOST_IP));
  link.inject(groupDatagram(7000, 'unlisted', parseIpv4(SSM)!, parseIpv4('10.0.0.7')!));
  assert.equal(got, ['listed:10.0.0.1']);
  assert.is(stack.ipv4.counters.drops['ip-multicast-not-joined'], 1);
  // A group-and-source query is answered with the sources asked that we want.
  link.inject(queryFrame(3, parseIpv4(SSM)!, 10, [HOST_IP, parseIpv4('10.0.0.9')!]));
  const answer = runCollect(clock, link, 1500);
  assert.equal(answer[0]!.records, [{ type: MODE_IS_INCLUDE, group: SSM, sources: ['10.0.0.1'] }]);
  s.dropSourceSpecificMembership('10.0.0.1', SSM);
  reports = runCollect(clock, link, 3000);
  assert.is(reports.length, 2);
  assert.equal(reports[0]!.records, [{ type: BLOCK_OLD_SOURCES, group: SSM, sources: ['10.0.0.1'] }]);
  assert.equal(stack.igmp.memberships().map((m) => formatIpv4(m.group)), ['224.0.0.1']);
});

test('Linux bounds: 20 groups a socket (ENOBUFS), 10 sources a group, and its errnos for misuse', async () => {
  const { stack } = await setup();
  const { s } = await boundSocket(stack, 7000);
  const code = (fn: () => void): string => {
    try {
      fn();
      return 'ok';
    } catch (err) {
      return (err as { code: string }).code;
    }
  };
  for (let i = 0; i < 20; i++) assert.is(code(() => s.addMembership(`239.2.0.${i}`)), 'ok');
  assert.is(code(() => s.addMembership('239.2.0.200')), 'ENOBUFS');
  assert.is(code(() => s.addMembership('239.2.0.1')), 'EADDRINUSE');
  assert.is(code(() => s.addMembership('10.0.0.1')), 'EINVAL');
  assert.is(code(() => s.dropMembership('239.3.3.3')), 'EADDRNOTAVAIL');
  const t = stack.dgram.createSocket('udp4');
  for (let i = 0; i < 10; i++) assert.is(code(() => t.addSourceSpecificMembership(`10.1.0.${i}`, '232.1.1.3')), 'ok');
  assert.is(code(() => t.addSourceSpecificMembership('10.1.0.50', '232.1.1.3')), 'ENOBUFS');
  assert.is(code(() => t.addSourceSpecificMembership('10.1.0.1', '232.1.1.3')), 'EADDRNOTAVAIL');
  assert.is(code(() => t.addMembership('232.1.1.4', '10.9.9.9')), 'ENODEV');
  assert.is(code(() => t.setMulticastInterface('10.9.9.9')), 'EADDRNOTAVAIL');
  assert.is(code(() => t.setMulticastInterface('10.0.0.2')), 'ok');
  // Closing leaves every group.
  s.close();
  t.close();
  assert.equal(stack.igmp.memberships().map((m) => formatIpv4(m.group)), ['224.0.0.1']);
});

test('sending to a group: the mapped MAC, no ARP, IP_MULTICAST_TTL (1 by default), loopback per IP_MULTICAST_LOOP', async () => {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock);
  const a = await createStack({ link: la, clock, ip: '10.0.0.1/24', seed: 1 });
  const b = await createStack({ link: lb, clock, ip: '10.0.0.2/24', seed: 2 });
  const frames: Buffer[] = [];
  const send = la.send.bind(la);
  la.send = (buf, off, len) => {
    frames.push(Buffer.from(buf.subarray(off, off + len)));
    send(buf, off, len);
  };
  const member = (stack: typeof a, name: string, got: string[]) => {
    const s = stack.dgram.createSocket({ type: 'udp4', reuseAddr: true });
    s.on('message', (m) => got.push(`${name}:${m}`));
    s.bind(6000, () => s.addMembership(GROUP));
    return s;
  };
  const got: string[] = [];
  member(a, 'a', got);
  member(b, 'b', got);
  await ticks();
  clock.runAll(5000);
  frames.length = 0;
  const sender = a.dgram.createSocket('udp4');
  sender.bind(0);
  await ticks();
  sender.send('loop on', 6000, GROUP);
  clock.runAll(100);
  sender.setMulticastLoopback(false);
  sender.setMulticastTTL(7);
  sender.send('loop off', 6000, GROUP);
  clock.runAll(100);
  await ticks();
  sender.setMulticastLoopback(true);
  sender.setMulticastTTL(0);
  sender.send('ttl 0', 6000, GROUP);
  clock.runAll(100);
  await ticks();
  // TTL 0: to this host's members only (Linux ip_mc_output).
  assert.equal(got.sort(), ['a:loop on', 'a:ttl 0', 'b:loop off', 'b:loop on']);
  const udp = frames.map((f) => parseIpv4Frame(f)!).filter((ip) => ip.protocol === PROTO_UDP);
  assert.is(udp.length, 2);
  assert.equal(udp.map((ip) => ip.ttl), [1, 7]);
  for (const f of frames) assert.is(f.readUInt16BE(12), 0x0800, 'no ARP for a group');
  assert.is(formatMac(frames[0]!, 0), '01:00:5e:01:02:03');
});

test('the receive buffer bounds the datagrams queued in one batch (SO_RCVBUF), drops counted', async () => {
  const { link, stack } = await setup();
  const s = stack.dgram.createSocket('udp4');
  const got: string[] = [];
  s.on('message', (m) => got.push(String(m)));
  s.bind(6000);
  await ticks();
  s.setRecvBufferSize(1); // the minimum, 2304 bytes
  assert.is(s.getRecvBufferSize(), 2304);
  const datagram = (i: number): Buffer => {
    const payload = Buffer.alloc(1000, i);
    const d = Buffer.alloc(UDP_HEADER_LEN + payload.length);
    payload.copy(d, UDP_HEADER_LEN);
    emitUdpHeader(d, 0, HOST_IP, OUR_IP, 5000, 6000, payload.length);
    return ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_UDP }), d);
  };
  link.injectBatch(() => {
    for (let i = 0; i < 10; i++) link.inject(datagram(i));
  });
  // 1618 charged each: the second goes past 2304 (one is allowed past), the third finds it full.
  assert.is(got.length, 2);
  assert.is(stack.udp.counters.drops['udp-rcvbuf-errors'], 8);
  // The batch over, the queue is empty again.
  link.injectBatch(() => link.inject(datagram(1)));
  assert.is(got.length, 3);
});

test('stack.dgram is shaped like Node\'s dgram; unref\'d sockets let the stack release the event loop', async () => {
  const { stack } = await setup();
  const s = new stack.dgram.Socket('udp4');
  assert.ok(s instanceof stack.dgram.Socket);
  s.bind(0);
  assert.ok(stack.createSocket('udp4') instanceof stack.dgram.Socket);
  const t = stack.dgram.createSocket({ type: 'udp4', recvBufferSize: 50000, sendBufferSize: 60000 }, () => {});
  assert.is(t.listenerCount('message'), 1);
  t.bind(0);
  assert.is(t.getRecvBufferSize(), 100000);
  assert.is(t.getSendBufferSize(), 120000);
  assert.ok(stack.holdsLoop);
  s.unref();
  assert.ok(stack.holdsLoop, 'other sockets still ref\'d');
  for (const x of stack.udp['sockets']) x.unref();
  assert.not.ok(stack.holdsLoop);
  s.ref();
  assert.ok(stack.holdsLoop);
  s.close();
  assert.not.ok(stack.holdsLoop);
  const ac = new AbortController();
  const u = stack.dgram.createSocket({ type: 'udp4', signal: ac.signal });
  ac.abort();
  assert.not.ok(u.isRunning);
});

test.run();
