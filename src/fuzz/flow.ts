// The remote's side of the wire, for any fuzz target: builds the frame of a script's inbound
// line (acks and SACK blocks moved by the target's ISN, as the drill runner does) and reads
// what the target sent into OutboundSegments (seq relative to the ISN of its latest SYN),
// following the flow's ports as the target answers on them.

import type { PacketLine, TcpOption } from '../drill/parse.ts';
import { GATEWAY_MAC, LOCAL_MAC } from '../drill/target.ts';
import { buildInboundFrame, encodeOptions, flagsFromLetters, type WireSegment } from '../drill/wire.ts';
import { parseIpv4 } from '../ipv4/address.ts';
import { parseMac } from '../link/ethernet.ts';
import { SYN } from '../tcp/tcp-segment.ts';
import { type OutboundSegment, PASSIVE_REMOTE_PORT, REMOTE_IP, SERVER_PORT, TARGET_IP } from './target.ts';

const TARGET_MAC = parseMac(LOCAL_MAC)!;
const REMOTE_SIDE_MAC = parseMac(GATEWAY_MAC)!;

export class RemoteFlow {
  /** The connection the fuzzer talks on (the drill runner's Flow: SyscallHost updates the ports too). */
  readonly flow = { localPort: SERVER_PORT, remotePort: PASSIVE_REMOTE_PORT, localIsn: null as number | null, tsValOffset: null };
  private ipId = 1;
  private readonly localIp = parseIpv4(TARGET_IP)!;
  private readonly remoteIp = parseIpv4(REMOTE_IP)!;

  /** The Ethernet frame for an inbound line. */
  frameFor(p: PacketLine): Buffer {
    const isn = this.flow.localIsn ?? 0;
    const [srcPort, dstPort] = p.ports ?? [this.flow.remotePort, this.flow.localPort];
    const options = (p.options === null || p.options === 'any' ? [] : p.options).map((o): TcpOption => (o.kind === 'sack' ? { kind: 'sack', blocks: o.blocks.map(([l, r]) => [(l + isn) >>> 0, (r + isn) >>> 0]) } : o));
    return buildInboundFrame(
      TARGET_MAC,
      REMOTE_SIDE_MAC,
      {
        src: this.remoteIp,
        dst: this.localIp,
        srcPort,
        dstPort,
        seq: p.start >>> 0,
        ack: p.ack !== null ? (p.ack + isn) >>> 0 : 0,
        flags: flagsFromLetters(p.flags),
        window: p.win ?? 65535,
        urgentPointer: 0,
        options: encodeOptions(options),
        payloadLength: p.length,
      },
      this.ipId++,
    );
  }

  /** A segment the target sent, normalised (target.ts OutboundSegment); the flow follows it. */
  normalise(seg: WireSegment): OutboundSegment {
    if (seg.flags & SYN) this.flow.localIsn = seg.seq;
    // The flow follows what the target sends, as the drill runner's does line by line.
    this.flow.localPort = seg.srcPort;
    this.flow.remotePort = seg.dstPort;
    const isn = this.flow.localIsn ?? 0;
    return {
      at: seg.at,
      srcPort: seg.srcPort,
      dstPort: seg.dstPort,
      flags: seg.flags,
      seq: (seg.seq - isn) >>> 0,
      ack: seg.ack,
      window: seg.window,
      payloadLength: seg.payloadLength,
      // SACK blocks acknowledge the remote's data: its sequence space, kept as sent.
      options: seg.options,
    };
  }
}
