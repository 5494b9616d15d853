// The stack's own cost on the echo path, without the kernel: ICMP echo requests handed to
// the stack as a TAP would hand them over, replies taken by a link that does nothing. CPU
// time per echo (user + system of this process, mostly user) is what the stack adds to every
// flood-ping round trip; the rest of a round trip is the kernel's and the wake-ups'.
//
//   npx tsx bench/echo-path.ts [COUNT] [PAYLOAD]     (no root needed)
//   MIXED=1 npx tsx bench/echo-path.ts                other traffic's send options first

import { performance } from 'node:perf_hooks';
import { emitIcmp, ICMP_ECHO_REQUEST } from '../src/ipv4/icmp-packet.ts';
import { parseIpv4 } from '../src/ipv4/address.ts';
import { emitIpv4, PROTO_ICMP, PROTO_UDP } from '../src/ipv4/ipv4-packet.ts';
import { type SendOptions, TX_HEADROOM } from '../src/ipv4/ipv4.ts';
import { emitEthernet, ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, parseMac } from '../src/link/ethernet.ts';
import type { FrameReceiver, Link } from '../src/link/link.ts';
import { createStack } from '../src/stack.ts';

const COUNT = Number(process.argv[2] ?? 1_000_000);
const PAYLOAD = Number(process.argv[3] ?? 56); // ping's default

class NullLink implements Link {
  readonly mtu = 1500;
  sent = 0;
  receiver: FrameReceiver = () => {};
  send(): void {
    this.sent++;
  }
  setReceiver(r: FrameReceiver): void {
    this.receiver = r;
  }
  close(): void {}
}

const stackMac = parseMac('02:00:00:00:00:02')!;
const hostMac = parseMac('02:00:00:00:00:01')!;
const hostIp = parseIpv4('10.0.0.1')!;
const stackIp = parseIpv4('10.0.0.2')!;

async function main(): Promise<void> {
  const link = new NullLink();
  const stack = await createStack({ link, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', hostIp: '10.0.0.1/24' });
  // Teach the stack the host's MAC (an ARP reply), as the first ping would.
  const arp = Buffer.alloc(42);
  emitEthernet(arp, 0, stackMac, hostMac, ETHERTYPE_ARP);
  arp.writeUInt16BE(1, 14);
  arp.writeUInt16BE(0x0800, 16);
  arp[18] = 6;
  arp[19] = 4;
  arp.writeUInt16BE(2, 20);
  hostMac.copy(arp, 22);
  arp.writeUInt32BE(hostIp, 28);
  stackMac.copy(arp, 32);
  arp.writeUInt32BE(stackIp, 38);
  link.receiver(arp, 0, arp.length, null);

  // One receive buffer, like the TAP's, holding an echo request at offset 0.
  const rx = Buffer.alloc(16384);
  const icmpLen = emitIcmp(rx, ETH_HEADER_LEN + 20, { type: ICMP_ECHO_REQUEST, code: 0, rest: 0x12340001, data: Buffer.alloc(PAYLOAD, 0x61) });
  emitEthernet(rx, 0, stackMac, hostMac, ETHERTYPE_IPV4);
  emitIpv4(rx, ETH_HEADER_LEN, { tos: 0, id: 1, dontFragment: true, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol: PROTO_ICMP, src: hostIp, dst: stackIp }, icmpLen);
  const frameLen = ETH_HEADER_LEN + 20 + icmpLen;

  if (process.env.MIXED === '1') {
    // Other traffic first, as on a stack that also carries UDP and TCP: ipv4.send sees the
    // option objects of every transport before the echo path is measured.
    const out = Buffer.alloc(TX_HEADROOM + 100);
    const shapes: (SendOptions | undefined)[] = [undefined, { ttl: undefined, checksumField: 6 }, { checksumField: 16, segmentSize: 0 }, { tos: 0 }];
    for (let i = 0; i < 200_000; i++) stack.ipv4.send(PROTO_UDP, hostIp, out, TX_HEADROOM, 8 + (i & 63), shapes[i & 3]);
  }
  const warm = Math.min(200_000, COUNT);
  for (let i = 0; i < warm; i++) link.receiver(rx, 0, frameLen, null);
  link.sent = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < COUNT; i++) link.receiver(rx, 0, frameLen, null);
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  if (link.sent !== COUNT) throw new Error(`expected ${COUNT} replies, got ${link.sent}`);
  const ns = ((t1 - t0) * 1e6) / COUNT;
  const cpuNs = ((cpu.user + cpu.system) * 1e3) / COUNT;
  process.stdout.write(`RESULT echoes=${COUNT} payload=${PAYLOAD} wall_ns_per_echo=${ns.toFixed(0)} cpu_ns_per_echo=${cpuNs.toFixed(0)}\n`);
  await stack.close();
}

void main();
