// Hostile frames for the soak: what a scanner, a spoofer, a fuzzer or an on-path attacker
// sends to a segment of tapstacks. Every frame is built from the round's seeded random, so a
// failing seed replays the same attack.

import { finishChecksum, internetChecksum, pseudoHeaderSum, sumBytes } from '../../src/util/checksum.ts';
import { arpFrame, icmpMessage, ipv4Frame, ipv4Repr } from '../helpers/frames.ts';

export type Rng = () => number;

export const ATTACKER_MAC = Buffer.from([0x02, 0, 0, 0, 0, 0x66]);
export const ATTACKER_IP = 0x0a000042; // 10.0.0.66
const BROADCAST = Buffer.alloc(6, 0xff);

export interface Victim {
  ip: number;
  mac: Buffer;
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rng() * 256);
  return b;
}

interface IpFields {
  src: number;
  dst: number;
  protocol: number;
  ttl?: number;
  id?: number;
  /** Flags and fragment offset word (DF 0x4000, MF 0x2000, offset in 8-byte units). */
  fragWord?: number;
  /** Header length in bytes (20 to 60; options are zero-filled NOPs... end-of-list). */
  headerLength?: number;
}

/** An Ethernet + IPv4 frame around `payload`, IPv4 checksum right (options zero-filled to headerLength). */
export function ipFrame(dstMac: Buffer, srcMac: Buffer, f: IpFields, payload: Buffer): Buffer {
  const hl = f.headerLength ?? 20;
  const fragWord = f.fragWord ?? 0;
  const ip = ipv4Repr({
    src: f.src,
    dst: f.dst,
    protocol: f.protocol,
    id: f.id ?? 1,
    ttl: f.ttl ?? 64,
    dontFragment: (fragWord & 0x4000) !== 0,
    moreFragments: (fragWord & 0x2000) !== 0,
    fragmentOffset: (fragWord & 0x1fff) * 8,
    options: hl > 20 ? Buffer.alloc(hl - 20) : undefined,
  });
  return ipv4Frame(dstMac, srcMac, ip, payload);
}

interface TcpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window?: number;
  options?: Buffer;
  data?: Buffer;
}

/** A TCP segment with a right checksum for the given addresses. */
export function tcpSegment(src: number, dst: number, t: TcpFields): Buffer {
  const opts = t.options ?? Buffer.alloc(0);
  const optLen = (opts.length + 3) & ~3;
  const data = t.data ?? Buffer.alloc(0);
  const seg = Buffer.alloc(20 + optLen + data.length);
  seg.writeUInt16BE(t.srcPort, 0);
  seg.writeUInt16BE(t.dstPort, 2);
  seg.writeUInt32BE(t.seq >>> 0, 4);
  seg.writeUInt32BE(t.ack >>> 0, 8);
  seg[12] = ((20 + optLen) >> 2) << 4;
  seg[13] = t.flags & 0xff;
  seg.writeUInt16BE(t.window ?? 65535, 14);
  opts.copy(seg, 20);
  data.copy(seg, 20 + optLen);
  fixTransportChecksum(seg, 0, seg.length, src, dst, 6);
  return seg;
}

export function udpDatagram(src: number, dst: number, srcPort: number, dstPort: number, data: Buffer): Buffer {
  const d = Buffer.alloc(8 + data.length);
  d.writeUInt16BE(srcPort, 0);
  d.writeUInt16BE(dstPort, 2);
  d.writeUInt16BE(d.length, 4);
  data.copy(d, 8);
  fixTransportChecksum(d, 0, d.length, src, dst, 17);
  return d;
}

function fixTransportChecksum(buf: Buffer, off: number, len: number, src: number, dst: number, protocol: number): void {
  const field = protocol === 6 ? 16 : 6;
  if (len < field + 2) return;
  buf.writeUInt16BE(0, off + field);
  const sum = finishChecksum(sumBytes(buf, off, len, pseudoHeaderSum(src, dst, protocol, len)));
  buf.writeUInt16BE(protocol === 17 && sum === 0 ? 0xffff : sum, off + field);
}

/** Makes the IPv4 and (for unfragmented TCP/UDP) transport checksums right again after a mutation. */
export function fixChecksums(frame: Buffer): void {
  if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800) return;
  const hl = (frame[14]! & 0x0f) * 4;
  if (hl < 20 || 14 + hl > frame.length) return;
  frame.writeUInt16BE(0, 24);
  frame.writeUInt16BE(internetChecksum(frame, 14, hl), 24);
  const total = Math.min(frame.readUInt16BE(16), frame.length - 14);
  const fragWord = frame.readUInt16BE(20);
  if ((fragWord & 0x3fff) !== 0 || total <= hl) return;
  const protocol = frame[23]!;
  if (protocol !== 6 && protocol !== 17) return;
  fixTransportChecksum(frame, 14 + hl, total - hl, frame.readUInt32BE(26), frame.readUInt32BE(30), protocol);
}

/** Addresses a spoofer likes: martians, broadcasts, the victims' own, off-subnet ones. */
function spoofedSource(rng: Rng, victims: readonly Victim[]): number {
  return pick(rng, [
    pick(rng, victims).ip,
    0x7f000001, // 127.0.0.1
    0xf0000001, // 240.0.0.1
    0xffffffff,
    0x0a0000ff, // the subnet broadcast
    0xe0000001, // 224.0.0.1
    0x00000000,
    0xc0a80001, // 192.168.0.1: off-subnet (never sent anywhere: the hub is in memory)
    ATTACKER_IP,
    0x0a000000 | randInt(rng, 1, 254),
  ]);
}

/** Frames seen on the segment, for mutation and replay (a bounded ring). */
export class FrameSample {
  private readonly frames: Buffer[] = [];
  private next = 0;
  constructor(private readonly size = 256) {}
  observe(buf: Buffer, off: number, len: number, rng: Rng): void {
    // Keep a random sample (reservoir-like): copies only now and then.
    if (this.frames.length < this.size) this.frames.push(Buffer.from(buf.subarray(off, off + len)));
    else if (rng() < 0.05) {
      this.frames[this.next] = Buffer.from(buf.subarray(off, off + len));
      this.next = (this.next + 1) % this.size;
    }
  }
  any(rng: Rng): Buffer | null {
    return this.frames.length === 0 ? null : Buffer.from(pick(rng, this.frames));
  }
}

export type HostileKind =
  | 'garbage'
  | 'mutate'
  | 'mutate-fixed'
  | 'land'
  | 'self-echo'
  | 'broadcast-echo'
  | 'martian-ping'
  | 'syn-flood'
  | 'arp-spoof'
  | 'fragments'
  | 'frag-needed'
  | 'blind-rst'
  | 'replay-shifted'
  | 'options'
  | 'ack-cookie'
  | 'icmp-errors'
  | 'udp-scan';

/** 'blind' attacks cannot guess a connection's window; 'on-path' ones replay what they saw. */
export const BLIND_KINDS: readonly HostileKind[] = [
  'garbage', 'mutate', 'land', 'self-echo', 'broadcast-echo', 'martian-ping', 'syn-flood', 'arp-spoof',
  'fragments', 'frag-needed', 'blind-rst', 'options', 'ack-cookie', 'udp-scan',
];
export const ON_PATH_KINDS: readonly HostileKind[] = [...BLIND_KINDS, 'mutate-fixed', 'replay-shifted', 'icmp-errors'];

/** The frames of one hostile act (at most a few hundred). */
export function hostileFrames(kind: HostileKind, rng: Rng, victims: readonly Victim[], sample: FrameSample): Buffer[] {
  const v = pick(rng, victims);
  const dstMac = rng() < 0.8 ? v.mac : BROADCAST;
  switch (kind) {
    case 'garbage':
      return [randomBytes(rng, randInt(rng, 1, 1514))];
    case 'mutate':
    case 'mutate-fixed': {
      const f = sample.any(rng);
      if (!f) return [];
      const flips = randInt(rng, 1, 8);
      for (let i = 0; i < flips; i++) {
        // Mostly header bytes, where parsers branch.
        const at = rng() < 0.8 ? randInt(rng, 14, Math.min(f.length - 1, 80)) : randInt(rng, 0, f.length - 1);
        if (at >= 0 && at < f.length) f[at] = Math.floor(rng() * 256);
      }
      const cut = rng() < 0.2 ? f.subarray(0, randInt(rng, 14, f.length)) : f;
      if (kind === 'mutate-fixed') fixChecksums(cut);
      return [cut];
    }
    case 'land': {
      const port = pick(rng, [7, 9, 19, 80, 5000, randInt(rng, 1, 65535)]);
      return [ipFrame(v.mac, ATTACKER_MAC, { src: v.ip, dst: v.ip, protocol: 6 },
        tcpSegment(v.ip, v.ip, { srcPort: port, dstPort: port, seq: randInt(rng, 0, 2 ** 32 - 1), ack: 0, flags: 0x02 }))];
    }
    case 'self-echo': {
      const port = pick(rng, [7, 19, 13, 37]);
      return [ipFrame(v.mac, ATTACKER_MAC, { src: v.ip, dst: v.ip, protocol: 17 }, udpDatagram(v.ip, v.ip, port, port, randomBytes(rng, randInt(rng, 0, 64))))];
    }
    case 'broadcast-echo': {
      const dst = pick(rng, [0xffffffff, 0x0a0000ff, 0xe0000001]);
      const src = rng() < 0.5 ? pick(rng, victims).ip : ATTACKER_IP;
      const srcPort = pick(rng, [7, 19, 5001, randInt(rng, 1024, 65535)]);
      const mac = dst === 0xe0000001 ? Buffer.from([0x01, 0x00, 0x5e, 0, 0, 1]) : BROADCAST;
      if (rng() < 0.5) return [ipFrame(mac, ATTACKER_MAC, { src, dst, protocol: 1 }, icmpMessage(8, 0, randInt(rng, 0, 2 ** 32 - 1), randomBytes(rng, 32)))];
      return [ipFrame(mac, ATTACKER_MAC, { src, dst, protocol: 17 }, udpDatagram(src, dst, srcPort, pick(rng, [7, 19, 13]), randomBytes(rng, 16)))];
    }
    case 'martian-ping': {
      const src = spoofedSource(rng, victims);
      return [ipFrame(v.mac, ATTACKER_MAC, { src, dst: v.ip, protocol: 1 }, icmpMessage(8, 0, randInt(rng, 0, 2 ** 32 - 1), randomBytes(rng, 16)))];
    }
    case 'syn-flood': {
      const out: Buffer[] = [];
      const n = randInt(rng, 10, 300);
      const port = pick(rng, [7, 9, 19, 80, 5000]);
      for (let i = 0; i < n; i++) {
        const src = 0x0a000000 | randInt(rng, 100, 250);
        out.push(ipFrame(v.mac, ATTACKER_MAC, { src, dst: v.ip, protocol: 6 },
          tcpSegment(src, v.ip, { srcPort: randInt(rng, 1024, 65535), dstPort: port, seq: randInt(rng, 0, 2 ** 32 - 1), ack: 0, flags: 0x02,
            options: Buffer.from([2, 4, 0x05, 0xb4, 4, 2, 1, 1]) })));
      }
      return out;
    }
    case 'arp-spoof': {
      const out: Buffer[] = [];
      const n = randInt(rng, 1, 64);
      for (let i = 0; i < n; i++) {
        const senderMac = rng() < 0.2 ? BROADCAST : rng() < 0.1 ? Buffer.alloc(6) : Buffer.from([0x02, 0x66, 0, 0, randInt(rng, 0, 255), randInt(rng, 0, 255)]);
        const senderIp = rng() < 0.5 ? pick(rng, victims).ip : spoofedSource(rng, victims);
        const op = rng() < 0.5 ? 1 : 2;
        const ethDst = rng() < 0.5 ? BROADCAST : v.mac;
        const targetIp = rng() < 0.7 ? v.ip : spoofedSource(rng, victims);
        out.push(arpFrame(ethDst, { op, senderMac, senderIp, targetMac: op === 1 ? Buffer.alloc(6) : v.mac, targetIp }));
      }
      return out;
    }
    case 'fragments': {
      const out: Buffer[] = [];
      const id = randInt(rng, 0, 65535);
      const src = rng() < 0.7 ? ATTACKER_IP : spoofedSource(rng, victims);
      const n = randInt(rng, 1, 40);
      for (let i = 0; i < n; i++) {
        const offset = rng() < 0.2 ? 8189 : randInt(rng, 0, 200); // 8189 * 8 + len: the 65,535 edge
        const more = rng() < 0.7 ? 0x2000 : 0;
        const len = randInt(rng, 1, 180) * 8;
        const hl = rng() < 0.3 ? 60 : 20;
        out.push(ipFrame(v.mac, ATTACKER_MAC, { src, dst: v.ip, protocol: pick(rng, [1, 6, 17]), id, fragWord: more | offset, headerLength: hl }, randomBytes(rng, len)));
      }
      return out;
    }
    case 'frag-needed': {
      // ICMP "fragmentation needed" quoting a segment of a connection seen on the wire.
      const f = sample.any(rng);
      const mtu = pick(rng, [0, 68, 100, 296, 552, 576, 1280, randInt(rng, 0, 65535)]);
      const quoted = f && f.length > 34 ? f.subarray(14, Math.min(f.length, 14 + 60)) : randomBytes(rng, 28);
      const dst = f && f.length > 34 ? f.readUInt32BE(26) : v.ip;
      const dmac = f && f.length > 34 ? f.subarray(6, 12) : v.mac;
      return [ipFrame(Buffer.from(dmac), ATTACKER_MAC, { src: ATTACKER_IP, dst, protocol: 1 }, icmpMessage(3, 4, mtu & 0xffff, Buffer.from(quoted)))];
    }
    case 'blind-rst': {
      const out: Buffer[] = [];
      const n = randInt(rng, 1, 50);
      const src = pick(rng, victims).ip;
      for (let i = 0; i < n; i++)
        out.push(ipFrame(v.mac, ATTACKER_MAC, { src, dst: v.ip, protocol: 6 },
          tcpSegment(src, v.ip, { srcPort: pick(rng, [5000, 7, 9, 19, 80, randInt(rng, 32768, 60999)]), dstPort: pick(rng, [5000, 7, 9, 19, 80, randInt(rng, 32768, 60999)]),
            seq: randInt(rng, 0, 2 ** 32 - 1), ack: randInt(rng, 0, 2 ** 32 - 1), flags: pick(rng, [0x04, 0x14, 0x10, 0x02, 0x12, 0x11, 0x01, 0x3f, 0x00]) })));
      return out;
    }
    case 'replay-shifted': {
      // An on-path attacker: a TCP segment seen on the wire, sequence or ack moved a little.
      const f = sample.any(rng);
      if (!f || f.length < 54 || f.readUInt16BE(12) !== 0x0800 || f[23] !== 6) return [];
      const hl = (f[14]! & 0x0f) * 4;
      const t = 14 + hl;
      if (t + 20 > f.length) return [];
      f.writeUInt32BE((f.readUInt32BE(t + 4) + randInt(rng, -70000, 70000)) >>> 0, t + 4);
      if (rng() < 0.5) f.writeUInt32BE((f.readUInt32BE(t + 8) + randInt(rng, -70000, 70000)) >>> 0, t + 8);
      if (rng() < 0.3) f[t + 13] = pick(rng, [0x04, 0x14, 0x02, 0x12, 0x11, 0x01]);
      fixChecksums(f);
      return [f];
    }
    case 'options': {
      // A SYN or ACK with odd options: lengths 0, 1 and past the header, repeated kinds, SACK blocks.
      const opts = randomBytes(rng, randInt(rng, 1, 40));
      for (let i = 0; i < opts.length; i += randInt(rng, 1, 6)) opts[i] = pick(rng, [0, 1, 2, 3, 4, 5, 8, 30, 254, 255]);
      return [ipFrame(v.mac, ATTACKER_MAC, { src: ATTACKER_IP, dst: v.ip, protocol: 6 },
        tcpSegment(ATTACKER_IP, v.ip, { srcPort: randInt(rng, 1024, 65535), dstPort: pick(rng, [5000, 7, 9, 19, 80]), seq: randInt(rng, 0, 2 ** 32 - 1),
          ack: randInt(rng, 0, 2 ** 32 - 1), flags: pick(rng, [0x02, 0x10, 0x18, 0x12]), options: opts.subarray(0, Math.min(opts.length, 40)) }))];
    }
    case 'icmp-errors': {
      // ICMP errors quoting a segment seen on the wire: unreachables of every code, time
      // exceeded, source quench, redirects, parameter problems (RFC 5927's attacks).
      const f = sample.any(rng);
      if (!f || f.length < 42 || f.readUInt16BE(12) !== 0x0800) return [];
      const [type, code] = pick(rng, [[3, randInt(rng, 0, 15)], [11, 0], [11, 1], [4, 0], [5, randInt(rng, 0, 3)], [12, 0]] as const);
      const rest = type === 5 ? ATTACKER_IP : type === 12 ? randInt(rng, 0, 60) << 24 : 0;
      const quoted = f.subarray(14, Math.min(f.length, 14 + 28 + randInt(rng, 0, 40)));
      return [ipFrame(Buffer.from(f.subarray(6, 12)), ATTACKER_MAC, { src: rng() < 0.5 ? ATTACKER_IP : f.readUInt32BE(30), dst: f.readUInt32BE(26), protocol: 1 },
        icmpMessage(type, code, rest, Buffer.from(quoted)))];
    }
    case 'udp-scan': {
      // Datagrams to many closed ports: each may draw a port unreachable (RFC 1812 4.3.2.8: rate-limited).
      const out: Buffer[] = [];
      const n = randInt(rng, 10, 300);
      for (let i = 0; i < n; i++) {
        const port = randInt(rng, 1, 65535);
        out.push(ipFrame(v.mac, ATTACKER_MAC, { src: ATTACKER_IP, dst: v.ip, protocol: 17 }, udpDatagram(ATTACKER_IP, v.ip, randInt(rng, 1024, 65535), port, randomBytes(rng, randInt(rng, 0, 32)))));
      }
      return out;
    }
    case 'ack-cookie': {
      // Bare ACKs to a listener: SYN cookie guesses.
      const out: Buffer[] = [];
      const n = randInt(rng, 1, 100);
      for (let i = 0; i < n; i++)
        out.push(ipFrame(v.mac, ATTACKER_MAC, { src: ATTACKER_IP, dst: v.ip, protocol: 6 },
          tcpSegment(ATTACKER_IP, v.ip, { srcPort: randInt(rng, 1024, 65535), dstPort: pick(rng, [5000, 7, 9, 19, 80]), seq: randInt(rng, 0, 2 ** 32 - 1),
            ack: randInt(rng, 0, 2 ** 32 - 1), flags: 0x10 })));
      return out;
    }
  }
}
