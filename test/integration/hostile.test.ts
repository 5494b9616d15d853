// Malformed and crafted traffic from the kernel's side of the TAP (hping3, nping, and raw
// frames replayed with tcpreplay) leaves the stack alive and answering ping, with every bad
// frame counted under a drop reason and no internal error.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARP_REQUEST } from '../../src/arp/arp-packet.ts';
import { seededRandom } from '../../src/util/random.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { internetChecksum } from '../../src/util/checksum.ts';
import { ICMP_ECHO_REQUEST } from '../../src/ipv4/icmp-packet.ts';
import { PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, parseMac } from '../../src/link/ethernet.ts';
import { PcapWriter } from '../../src/link/pcap.ts';
import { arpFrame, icmpMessage, ipv4Frame, ipv4Repr } from '../helpers/frames.ts';
import { type Namespace, withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';
import { assertAnswering, stopWithStats } from '../helpers/stack-checks.ts';

const it = canUseTap ? test : test.skip;
const STACK_MAC = '02:00:00:00:aa:02';
const OUR_MAC = parseMac(STACK_MAC)!;
const OUR_IP = parseIpv4('10.0.0.2')!;
const HOST_IP = parseIpv4('10.0.0.1')!;


it('hping3 and nping: bad checksums, fragments, IP options, raw protocols, random payloads', async () => {
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', '--mac', STACK_MAC, '--stats-on-exit']);
    await assertAnswering(ns, stack, 'before');
    const target = '10.0.0.2';
    const runs: string[][] = [
      ['hping3', '-1', '--badcksum', '-c', '20', '-i', 'u2000', target], // ICMP with a bad checksum
      ['hping3', '-1', '-f', '-d', '300', '-c', '10', '-i', 'u2000', target], // 16-byte fragments
      ['hping3', '-1', '-x', '-c', '5', '-i', 'u2000', target], // more-fragments flag alone
      ['hping3', '-1', '-g', '64', '-c', '5', '-i', 'u2000', target], // a lone non-first fragment
      ['hping3', '-1', '-G', '-c', '5', '-i', 'u2000', target], // record route option
      ['hping3', '-1', '--lsrr', '10.0.0.1', '-c', '5', '-i', 'u2000', target], // loose source route
      ['hping3', '-0', '-H', '99', '-d', '64', '-E', '/dev/urandom', '-c', '10', '-i', 'u2000', target], // unknown protocol, random bytes
      ['hping3', '-1', '-d', '1400', '-E', '/dev/urandom', '-c', '20', '-i', 'u2000', target], // random ICMP payloads
      ['hping3', '-1', '-C', '13', '-c', '3', '-i', 'u2000', target], // ICMP timestamp request
      ['hping3', '-2', '-p', '9', '--badcksum', '-c', '5', '-i', 'u2000', target], // UDP with a bad checksum
      ['hping3', '-S', '-p', '80', '-c', '5', '-i', 'u2000', target], // TCP SYN
      ['hping3', '-1', '-d', '3000', '-c', '3', '-i', 'u10000', target], // fragmented by the kernel
      ['nping', '--icmp', '--ip-options', 'R', '-c', '3', '--delay', '10ms', target],
      ['nping', '--icmp', '--ip-options', 'T', '-c', '3', '--delay', '10ms', target],
      ['nping', '--icmp', '--icmp-type', '3', '--icmp-code', '3', '-c', '3', '--delay', '10ms', target],
      ['nping', '--udp', '--data-length', '1400', '-c', '3', '--delay', '10ms', target],
    ];
    for (const [cmd, ...args] of runs) {
      await ns.exec(cmd!, args, 30_000);
      await assertAnswering(ns, stack, [cmd, ...args].join(' '));
    }
    const stats = await stopWithStats(stack);
    assert.ok((stats.icmp!.drops['icmp-bad-checksum'] ?? 0) >= 20, JSON.stringify(stats));
    assert.ok((stats.icmp!.drops['icmp-unhandled-type'] ?? 0) >= 3, JSON.stringify(stats));
    assert.ok(stats.icmp!.tx >= 20 + 10, 'random payloads echoed and protocol 99 answered');
  });
});

function fixIpChecksum(f: Buffer): void {
  f.writeUInt16BE(0, 24);
  f.writeUInt16BE(internetChecksum(f, 14, 20), 24);
}

/** Frames no well-behaved host sends: every header defect, and random bytes. */
function craftedFrames(hostMac: Buffer): Buffer[] {
  const random = seededRandom(1234);
  const byte = (): number => Math.floor(random() * 256);
  const frames: Buffer[] = [];
  const echo = (options?: Buffer): Buffer =>
    ipv4Frame(OUR_MAC, hostMac, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP, options }), icmpMessage(ICMP_ECHO_REQUEST, 0, 0x42, Buffer.alloc(32, 7)));
  const withChange = (change: (f: Buffer) => void): Buffer => {
    const f = echo();
    change(f);
    return f;
  };
  for (let i = 0; i < 20; i++) {
    frames.push(withChange((f) => (f[14] = 0x40 | (i % 5)))); // IHL below 5
    frames.push(withChange((f) => f.writeUInt16BE(1500 + i, 16))); // total length beyond the frame
    frames.push(withChange((f) => (f[24]! ^= 0xff))); // bad header checksum
    frames.push(echo(Buffer.from([0x44, 0x28 + i, 5, 0]))); // option running past the header
    frames.push(withChange((f) => (f.writeUInt16BE(0x2000 | i, 20), fixIpChecksum(f)))); // fragments
    frames.push(echo().subarray(0, 14 + (i % 20))); // IPv4 cut short
    frames.push(withChange((f) => (f.writeUInt16BE(20 + (i % 8), 16), fixIpChecksum(f)))); // ICMP cut short
  }
  for (let i = 0; i < 200; i++) {
    const f = Buffer.alloc(14 + Math.floor(random() * 1500));
    for (let j = 0; j < f.length; j++) f[j] = byte();
    OUR_MAC.copy(f, 0);
    hostMac.copy(f, 6);
    f.writeUInt16BE(i % 2 ? ETHERTYPE_IPV4 : ETHERTYPE_ARP, 12);
    if (i % 2) f[14] = 0x45;
    frames.push(f);
  }
  for (let i = 0; i < 20; i++) {
    const f = arpFrame(BROADCAST_MAC, { op: ARP_REQUEST, senderMac: hostMac, senderIp: HOST_IP, targetMac: Buffer.alloc(6), targetIp: OUR_IP });
    f[14 + (i % 8)] = byte(); // hardware/protocol type and lengths, operation
    frames.push(f);
  }
  return frames;
}

it('crafted raw frames replayed on the TAP (tcpreplay): dropped by reason, still answering', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tapstack-hostile-'));
  try {
    await withNamespace(async (ns) => {
      const stack = await ns.startStack(['--tap', 'tap0', '--mac', STACK_MAC, '--stats-on-exit']);
      await assertAnswering(ns, stack, 'before');
      const link = await ns.exec('cat', ['/sys/class/net/tap0/address']);
      const hostMac = parseMac(link.stdout.trim())!;
      const file = path.join(dir, 'crafted.pcap');
      const writer = new PcapWriter(file);
      const frames = craftedFrames(hostMac);
      for (const f of frames) writer.write(f, 0, f.length);
      writer.close();
      const r = await ns.exec('tcpreplay', ['-q', '-i', 'tap0', '--pps', '5000', file], 60_000);
      assert.is(r.code, 0, r.stdout + r.stderr);
      await assertAnswering(ns, stack, 'after crafted frames');
      const stats = await stopWithStats(stack);
      const drops = (layer: string, reason: string): number => stats[layer]!.drops[reason] ?? 0;
      assert.ok(drops('ipv4', 'ip-bad-ihl') >= 20, JSON.stringify(stats.ipv4));
      assert.ok(drops('ipv4', 'ip-bad-length') >= 20, JSON.stringify(stats.ipv4));
      assert.ok(drops('ipv4', 'ip-bad-checksum') >= 20, JSON.stringify(stats.ipv4));
      assert.ok(drops('ipv4', 'ip-bad-options') >= 20, JSON.stringify(stats.ipv4));
      assert.ok(drops('ipv4', 'ip-short') >= 10, JSON.stringify(stats.ipv4));
      assert.ok(drops('icmp', 'icmp-short') >= 20, JSON.stringify(stats.icmp));
      assert.ok(drops('arp', 'arp-unsupported') + drops('arp', 'arp-short') >= 50, JSON.stringify(stats.arp));
      assert.ok(stats.ethernet!.rx >= frames.length, 'every frame reached the stack');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
