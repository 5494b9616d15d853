// Public API of tapstack.
export { createStack, Stack, StackConfigError, stableMac, type StackOptions } from './stack.ts';
export type { FrameProbe, Probe } from './probe.ts';
export { DecodedFrame } from './probe-decode.ts';
export { RealClock, VirtualClock, type Clock, type Timer } from './util/clock.ts';
export { createLinkPair, MemoryLink, MemoryHub } from './link/memory.ts';
export { FaultyLink, type FaultOptions } from './link/faults.ts';
export { NetemLink, type NetemCounters, type NetemLoss, type NetemOptions, type NetemShape } from './link/netem.ts';
export { PcapWriter, CapturingLink } from './link/pcap.ts';
export type { Link } from './link/link.ts';
export { TapDevice, TapError } from './tap/tap.ts';
export { formatIpv4, parseIpv4 } from './ipv4/address.ts';
export { UdpSocket, type RemoteInfo, type SocketOptions as UdpSocketOptions } from './udp/socket.ts';
export { UdpLayer } from './udp/udp.ts';
export { Ipv4Reassembler, type ReassemblyOptions } from './ipv4/reassembly.ts';
export { Server as TcpServer, type ServerOptions } from './tcp/server.ts';
export { Socket as TcpSocket, type ConnectOptions, type SocketOptions } from './tcp/socket.ts';
export { TcpLayer } from './tcp/layer.ts';
export { DEFAULT_TCP_CONFIG, type TcpConfig } from './tcp/config.ts';
