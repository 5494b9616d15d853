// DHCP messages (RFC 2131 2, options of RFC 2132): a BOOTP header, the magic cookie, then
// options as code, length, value. parseDhcp validates everything it reads and returns an
// error string for a bad message, never throws; emitDhcp writes into the caller's buffer.

import { type Mac } from '../link/ethernet.ts';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

/** Option 53 values (RFC 2132 9.6). */
export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPDECLINE = 4;
export const DHCPACK = 5;
export const DHCPNAK = 6;
export const DHCPRELEASE = 7;
export const DHCPINFORM = 8;

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;

/** RFC 2131 3: 99.130.83.99 opens the options field. */
const MAGIC_COOKIE = 0x63825363;
/** op .. file: the fixed BOOTP header (RFC 2131 figure 1). */
const BOOTP_HEADER_LEN = 236;
const OPTIONS_START = BOOTP_HEADER_LEN + 4;
const SNAME_OFFSET = 44;
const SNAME_LEN = 64;
const FILE_OFFSET = 108;
const FILE_LEN = 128;
/** RFC 1542 2.1: relays may drop a BOOTP message shorter than 300 bytes; pad to it. */
export const DHCP_MIN_LENGTH = 300;
/** RFC 2131 2: a client must be able to take 576-byte IP datagrams, 548 bytes of DHCP. */
export const DHCP_MAX_LENGTH = 548;
const HOPS_OFFSET = 3;
const GIADDR_OFFSET = 24;
/** RFC 2131 4.1: the BROADCAST flag asks the server to broadcast its replies. */
const FLAG_BROADCAST = 0x8000;

const OPT_PAD = 0;
const OPT_SUBNET_MASK = 1;
const OPT_ROUTER = 3;
const OPT_DNS = 6;
const OPT_HOST_NAME = 12;
const OPT_REQUESTED_IP = 50;
const OPT_LEASE_TIME = 51;
const OPT_OVERLOAD = 52;
const OPT_MESSAGE_TYPE = 53;
const OPT_SERVER_ID = 54;
const OPT_PARAMETER_LIST = 55;
const OPT_MESSAGE = 56;
const OPT_RENEWAL_TIME = 58;
const OPT_REBINDING_TIME = 59;
const OPT_CLIENT_ID = 61;
const OPT_END = 255;

export interface DhcpMessage {
  op: number;
  /** Relay agents the message went through (RFC 1542 4.1.1); a client sends 0. */
  hops: number;
  xid: number;
  secs: number;
  broadcast: boolean;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** The client's hardware address (htype 1, hlen 6: Ethernet). */
  chaddr: Mac;
  /** Option 53; null when absent (a plain BOOTP message). */
  messageType: number | null;
  subnetMask: number | null;
  routers: number[];
  dnsServers: number[];
  /** Seconds; 0xffffffff is infinite (RFC 2132 9.2). */
  leaseTime: number | null;
  serverId: number | null;
  requestedIp: number | null;
  parameterList: number[];
  /** T1 and T2 in seconds. */
  renewalTime: number | null;
  rebindingTime: number | null;
  clientId: Uint8Array | null;
  hostName: string | null;
  /** Option 56: a server's reason (in a NAK, say). */
  message: string | null;
}

/** A message with every option absent, to fill in. */
export function emptyDhcpMessage(op: number, xid: number, chaddr: Mac): DhcpMessage {
  return {
    op,
    hops: 0,
    xid,
    secs: 0,
    broadcast: false,
    ciaddr: 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr,
    messageType: null,
    subnetMask: null,
    routers: [],
    dnsServers: [],
    leaseTime: null,
    serverId: null,
    requestedIp: null,
    parameterList: [],
    renewalTime: null,
    rebindingTime: null,
    clientId: null,
    hostName: null,
    message: null,
  };
}

/**
 * Collects the options of one area into `into` by code. RFC 3396: several instances of one
 * option are concatenated. Returns the overload value (option 52) or an error.
 */
function collectOptions(buf: Uint8Array, start: number, end: number, into: Map<number, Uint8Array>): string | number {
  let overload = 0;
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === OPT_PAD) {
      i++;
      continue;
    }
    if (code === OPT_END) return overload;
    if (i + 1 >= end) return 'dhcp-option-truncated';
    const len = buf[i + 1]!;
    if (i + 2 + len > end) return 'dhcp-option-truncated';
    const value = buf.subarray(i + 2, i + 2 + len);
    if (code === OPT_OVERLOAD) {
      if (len !== 1) return 'dhcp-bad-overload';
      overload = value[0]!;
    } else {
      const before = into.get(code);
      into.set(code, before === undefined ? value : concat(before, value));
    }
    i += 2 + len;
  }
  // RFC 2131 4.1, RFC 2132 9.3: every option area ends with END; without it the message was
  // cut short, and what it would have said is unknown.
  return 'dhcp-no-end';
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function addressList(v: Uint8Array | undefined): number[] | string {
  if (v === undefined) return [];
  if (v.length === 0 || v.length % 4 !== 0) return 'dhcp-bad-address-list';
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(u32(v, i));
  return out;
}

function oneU32(v: Uint8Array | undefined): number | null | string {
  if (v === undefined) return null;
  return v.length === 4 ? u32(v, 0) : 'dhcp-bad-option-length';
}

function text(v: Uint8Array | undefined): string | null {
  if (v === undefined) return null;
  // Some servers count a trailing NUL in the length (RFC 2132 says not to); drop it.
  let n = v.length;
  while (n > 0 && v[n - 1] === 0) n--;
  return Buffer.from(v.buffer, v.byteOffset, n).toString('latin1');
}

/** Parses a DHCP message (the UDP payload); an error string for anything malformed. */
export function parseDhcp(buf: Uint8Array, off = 0, len = buf.length - off): DhcpMessage | string {
  if (off < 0 || len < OPTIONS_START || off + len > buf.length) return 'dhcp-too-short';
  const b = buf.subarray(off, off + len);
  const op = b[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) return 'dhcp-bad-op';
  // Only Ethernet hardware addresses (htype 1, hlen 6, RFC 1700).
  if (b[1] !== 1 || b[2] !== 6) return 'dhcp-bad-hardware';
  if (u32(b, BOOTP_HEADER_LEN) !== MAGIC_COOKIE) return 'dhcp-bad-cookie';
  const options = new Map<number, Uint8Array>();
  const overload = collectOptions(b, OPTIONS_START, b.length, options);
  if (typeof overload === 'string') return overload;
  // RFC 2132 9.3: option 52 says file (1), sname (2) or both (3) carry options too.
  if (overload & 1) {
    const r = collectOptions(b, FILE_OFFSET, FILE_OFFSET + FILE_LEN, options);
    if (typeof r === 'string') return r;
  }
  if (overload & 2) {
    const r = collectOptions(b, SNAME_OFFSET, SNAME_OFFSET + SNAME_LEN, options);
    if (typeof r === 'string') return r;
  }
  const m = emptyDhcpMessage(op, u32(b, 4), Buffer.from(b.subarray(28, 34)));
  m.hops = b[HOPS_OFFSET]!;
  m.secs = (b[8]! << 8) | b[9]!;
  m.broadcast = (((b[10]! << 8) | b[11]!) & FLAG_BROADCAST) !== 0;
  m.ciaddr = u32(b, 12);
  m.yiaddr = u32(b, 16);
  m.siaddr = u32(b, 20);
  m.giaddr = u32(b, GIADDR_OFFSET);
  const type = options.get(OPT_MESSAGE_TYPE);
  if (type !== undefined) {
    if (type.length !== 1 || type[0]! < DHCPDISCOVER || type[0]! > DHCPINFORM) return 'dhcp-bad-message-type';
    m.messageType = type[0]!;
  }
  const singles: [keyof DhcpMessage, number][] = [
    ['subnetMask', OPT_SUBNET_MASK],
    ['leaseTime', OPT_LEASE_TIME],
    ['serverId', OPT_SERVER_ID],
    ['requestedIp', OPT_REQUESTED_IP],
    ['renewalTime', OPT_RENEWAL_TIME],
    ['rebindingTime', OPT_REBINDING_TIME],
  ];
  for (const [field, code] of singles) {
    const v = oneU32(options.get(code));
    if (typeof v === 'string') return v;
    (m as unknown as Record<string, number | null>)[field] = v;
  }
  const routers = addressList(options.get(OPT_ROUTER));
  if (typeof routers === 'string') return routers;
  m.routers = routers;
  const dns = addressList(options.get(OPT_DNS));
  if (typeof dns === 'string') return dns;
  m.dnsServers = dns;
  const params = options.get(OPT_PARAMETER_LIST);
  if (params !== undefined) m.parameterList = [...params];
  const clientId = options.get(OPT_CLIENT_ID);
  if (clientId !== undefined) m.clientId = Uint8Array.from(clientId);
  m.hostName = text(options.get(OPT_HOST_NAME));
  m.message = text(options.get(OPT_MESSAGE));
  return m;
}

/** Options longer than 255 bytes are split into several instances (RFC 3396). */
function putOption(buf: Uint8Array, at: number, end: number, code: number, value: Uint8Array): number {
  let done = 0;
  do {
    const n = Math.min(255, value.length - done);
    if (at + 2 + n > end) return -1;
    buf[at] = code;
    buf[at + 1] = n;
    buf.set(value.subarray(done, done + n), at + 2);
    at += 2 + n;
    done += n;
  } while (done < value.length);
  return at;
}

function u32Bytes(values: readonly number[]): Uint8Array {
  const out = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => out.writeUInt32BE(v >>> 0, i * 4));
  return out;
}

/**
 * Writes `m` at buf[off..], padded to DHCP_MIN_LENGTH. Returns the length written, or -1 when
 * it does not fit in `limit` bytes (default DHCP_MAX_LENGTH, RFC 2131 2).
 */
export function emitDhcp(m: DhcpMessage, buf: Uint8Array, off = 0, limit = DHCP_MAX_LENGTH): number {
  const end = Math.min(buf.length, off + limit);
  if (end - off < DHCP_MIN_LENGTH) return -1;
  buf.fill(0, off, off + OPTIONS_START);
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  view[off] = m.op;
  view[off + 1] = 1;
  view[off + 2] = 6;
  view[off + HOPS_OFFSET] = m.hops;
  view.writeUInt32BE(m.xid >>> 0, off + 4);
  view.writeUInt16BE(m.secs & 0xffff, off + 8);
  view.writeUInt16BE(m.broadcast ? FLAG_BROADCAST : 0, off + 10);
  view.writeUInt32BE(m.ciaddr >>> 0, off + 12);
  view.writeUInt32BE(m.yiaddr >>> 0, off + 16);
  view.writeUInt32BE(m.siaddr >>> 0, off + 20);
  view.writeUInt32BE(m.giaddr >>> 0, off + GIADDR_OFFSET);
  view.set(m.chaddr.subarray(0, 6), off + 28);
  view.writeUInt32BE(MAGIC_COOKIE, off + BOOTP_HEADER_LEN);
  let at = off + OPTIONS_START;
  const put = (code: number, value: Uint8Array): void => {
    if (at >= 0) at = putOption(buf, at, end - 1, code, value);
  };
  // Message type first: RFC 2131 does not require it, but some servers look only there.
  if (m.messageType !== null) put(OPT_MESSAGE_TYPE, Uint8Array.of(m.messageType));
  if (m.clientId !== null) put(OPT_CLIENT_ID, m.clientId);
  if (m.requestedIp !== null) put(OPT_REQUESTED_IP, u32Bytes([m.requestedIp]));
  if (m.serverId !== null) put(OPT_SERVER_ID, u32Bytes([m.serverId]));
  if (m.subnetMask !== null) put(OPT_SUBNET_MASK, u32Bytes([m.subnetMask]));
  if (m.routers.length > 0) put(OPT_ROUTER, u32Bytes(m.routers));
  if (m.dnsServers.length > 0) put(OPT_DNS, u32Bytes(m.dnsServers));
  if (m.leaseTime !== null) put(OPT_LEASE_TIME, u32Bytes([m.leaseTime]));
  if (m.renewalTime !== null) put(OPT_RENEWAL_TIME, u32Bytes([m.renewalTime]));
  if (m.rebindingTime !== null) put(OPT_REBINDING_TIME, u32Bytes([m.rebindingTime]));
  if (m.hostName !== null) put(OPT_HOST_NAME, Buffer.from(m.hostName, 'latin1'));
  if (m.message !== null) put(OPT_MESSAGE, Buffer.from(m.message, 'latin1'));
  if (m.parameterList.length > 0) put(OPT_PARAMETER_LIST, Uint8Array.from(m.parameterList));
  if (at < 0) return -1;
  buf[at++] = OPT_END;
  const length = Math.max(at - off, DHCP_MIN_LENGTH);
  buf.fill(0, at, off + length);
  return length;
}

/**
 * What a relay agent changes in a message it passes on (RFC 1542 4.1.1), in place: hops and
 * giaddr. Everything else, the options it does not know included, goes on as it came.
 */
export function setRelayFields(buf: Uint8Array, off: number, hops: number, giaddr: number): void {
  buf[off + HOPS_OFFSET] = hops;
  Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).writeUInt32BE(giaddr >>> 0, off + GIADDR_OFFSET);
}
