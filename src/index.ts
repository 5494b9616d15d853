// Public API of tapstack.
export { createStack, Stack, StackConfigError, stableMac, type StackOptions } from './stack.ts';
export type { ArpProbe, FrameProbe, IcmpProbe, Probe } from './probe.ts';
export { DecodedFrame } from './probe-decode.ts';
export { RealClock, VirtualClock, type Clock, type Timer } from './util/clock.ts';
export { createLinkPair, MemoryLink, MemoryHub } from './link/memory.ts';
export { LearningSwitch, type SwitchCounters, type SwitchOptions } from './link/switch.ts';
export { Router, type RouterCounters, type RouterInterface, type RouterOptions, type StaticRoute } from './router.ts';
export { createNetwork, loadNetworkSpec, Network, type DeviceSpec, type NetworkOptions, type NetworkSpec, type Plug, type RouterSpec } from './network.ts';
export { createDevice, createFleet, Device, Fleet, type DeviceOptions, type DeviceStatus, type FleetOptions, type FleetStatus } from './fleet/fleet.ts';
export { Segment, SegmentPort, type SegmentCounters } from './fleet/segment.ts';
export { reachPeers, type ReachOptions, type ReachResult } from './fleet/reach.ts';
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
export { Socket as TcpSocket, type ConnectOptions, type OnRead, type SocketOptions } from './tcp/socket.ts';
export { createHttpAgent, createNetModule, type NetModule } from './net.ts';
export { defaultLookup, type LookupAddress, type LookupCallback, type LookupFunction, type LookupOptions } from './tcp/lookup.ts';
export { TcpLayer } from './tcp/layer.ts';
export type { ConnectionEntry } from './tcp/connections.ts';
export {
  LINUX_TCP_STATE,
  TCP_CA_Disorder,
  TCP_CA_Loss,
  TCP_CA_Open,
  TCP_CA_Recovery,
  TCP_CA_CWR,
  TCP_INFINITE_SSTHRESH,
  TCPI_OPT_ECN,
  TCPI_OPT_SACK,
  TCPI_OPT_TIMESTAMPS,
  TCPI_OPT_WSCALE,
  type TcpInfo,
} from './tcp/info.ts';
export { DEFAULT_TCP_CONFIG, type TcpConfig } from './tcp/config.ts';
export type { Trace, TraceOptions } from './trace/tracer.ts';
export { compileFilter, TraceFilterError } from './trace/filter.js';
export { formatRecord } from './trace/format-text.js';
export { TRACE_FORMAT_VERSION, TRACE_RECORD_TYPES, type TraceRecord, type TraceRecordType } from './trace/schema.ts';
export { DhcpClient, type DhcpLease, type DhcpOptions, type DhcpState } from './dhcp/client.ts';
export { DnsResolver, type DnsOptions } from './dns/resolver.ts';
