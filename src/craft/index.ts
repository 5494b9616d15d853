// tapstack/craft: build any frame layer by layer, send it to a stack or to Linux, wait for
// what comes back, read it field by field, and replay a recorded connection against a peer.

export {
  arp,
  type ArpFields,
  type BuildDefaults,
  encodeIpv4Options,
  encodeTcpOptions,
  ether,
  type EtherFields,
  icmp,
  type IcmpFields,
  ipv4,
  type Ipv4Fields,
  type Ipv4Input,
  type Ipv4Option,
  type Layer,
  type MacInput,
  Packet,
  raw,
  stack,
  tcp,
  type TcpFields,
  tcpFlagBits,
  tcpFlagLetters,
  type TcpOption,
  udp,
  type UdpFields,
} from './layers.ts';
export { decodeIpv4Options, decodeTcpOptions, type Dissected, dissect } from './dissect.ts';
export { type FragmentOptions, fragments } from './fragments.ts';
export { type ExpectOptions, farSide, Wire, type WireOptions, wirePair } from './wire.ts';
export { openTapWire, type TapWireOptions } from './tap-wire.ts';
export { replay, type ReplayOptions, type ReplayReport } from './replay.ts';
export { type PcapRecord, readPcap } from '../link/pcap.ts';
