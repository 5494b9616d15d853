// DNS messages (RFC 1035 4): header, questions, and resource records. parseDns follows name
// compression pointers (4.1.4) with loop protection and validates every length; it returns
// an error string for a malformed message, never throws. emitDns writes into a given buffer
// (names uncompressed: a stub's queries carry one name).

export const DNS_PORT = 53;
export const TYPE_A = 1;
export const TYPE_CNAME = 5;
export const TYPE_SOA = 6;
export const CLASS_IN = 1;

/** RFC 1035 4.1.1 RCODE values. */
export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;

const HEADER_LEN = 12;
/** RFC 1035 2.3.4: a name is at most 255 bytes on the wire, a label at most 63. */
const MAX_NAME = 255;
const MAX_LABEL = 63;
/** RFC 1035 2.3.4: 512 bytes over UDP unless EDNS says more (we send no EDNS). */
export const DNS_UDP_MAX = 512;

export interface DnsQuestion {
  /** Dotted, without the final dot; '' is the root. */
  name: string;
  type: number;
  class: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** TYPE_A in class IN: the address. */
  address?: number;
  /** TYPE_CNAME: the canonical name. */
  target?: string;
  /** Any other type: the RDATA as it came. */
  data?: Uint8Array;
}

export interface DnsMessage {
  id: number;
  /** QR: a response. */
  response: boolean;
  opcode: number;
  authoritative: boolean;
  /** TC: cut to fit the transport; ask again over TCP (RFC 1035 4.2.1). */
  truncated: boolean;
  recursionDesired: boolean;
  recursionAvailable: boolean;
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

/** A recursive query for one name (a stub asks its server to do the work, RFC 1034 5.3.1). */
export function dnsQuery(id: number, name: string, type = TYPE_A): DnsMessage {
  return {
    id,
    response: false,
    opcode: 0,
    authoritative: false,
    truncated: false,
    recursionDesired: true,
    recursionAvailable: false,
    rcode: 0,
    questions: [{ name, type, class: CLASS_IN }],
    answers: [],
    authorities: [],
    additionals: [],
  };
}

class Reader {
  at: number;
  constructor(
    readonly b: Uint8Array,
    at: number,
  ) {
    this.at = at;
  }
  u16(): number {
    const v = (this.b[this.at]! << 8) | this.b[this.at + 1]!;
    this.at += 2;
    return v;
  }
  u32(): number {
    const b = this.b;
    const v = ((b[this.at]! << 24) | (b[this.at + 1]! << 16) | (b[this.at + 2]! << 8) | b[this.at + 3]!) >>> 0;
    this.at += 4;
    return v;
  }
  has(n: number): boolean {
    return this.at + n <= this.b.length;
  }
}

/**
 * Reads a name at r.at, following compression pointers. A pointer must point before the
 * label that holds it (as BIND's dns_name_fromwire insists): no loop can then form, and
 * the wire length cap bounds the work.
 */
function readName(r: Reader): string | { error: string } {
  const b = r.b;
  const labels: string[] = [];
  let at = r.at;
  let wireLength = 1;
  let jumped = false;
  for (;;) {
    if (at >= b.length) return { error: 'dns-name-truncated' };
    const len = b[at]!;
    if (len === 0) {
      if (!jumped) r.at = at + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (at + 1 >= b.length) return { error: 'dns-name-truncated' };
      const target = ((len & 0x3f) << 8) | b[at + 1]!;
      if (target >= at) return { error: 'dns-bad-pointer' };
      if (!jumped) r.at = at + 2;
      jumped = true;
      at = target;
      continue;
    }
    if ((len & 0xc0) !== 0) return { error: 'dns-bad-label' };
    wireLength += len + 1;
    if (wireLength > MAX_NAME) return { error: 'dns-name-too-long' };
    if (at + 1 + len > b.length) return { error: 'dns-name-truncated' };
    labels.push(Buffer.from(b.buffer, b.byteOffset + at + 1, len).toString('latin1'));
    at += 1 + len;
  }
  return labels.join('.');
}

function readRecord(r: Reader): DnsRecord | string {
  const name = readName(r);
  if (typeof name !== 'string') return name.error;
  if (!r.has(10)) return 'dns-record-truncated';
  const type = r.u16();
  const cls = r.u16();
  const ttl = r.u32();
  const rdlength = r.u16();
  if (!r.has(rdlength)) return 'dns-record-truncated';
  const end = r.at + rdlength;
  // RFC 2181 8: a TTL with the top bit set is taken as 0.
  const record: DnsRecord = { name, type, class: cls, ttl: ttl > 0x7fffffff ? 0 : ttl };
  if (type === TYPE_A && cls === CLASS_IN) {
    if (rdlength !== 4) return 'dns-bad-a-length';
    record.address = r.u32();
  } else if (type === TYPE_CNAME) {
    const target = readName(r);
    if (typeof target !== 'string') return target.error;
    if (r.at !== end) return 'dns-bad-cname-length';
    record.target = target;
  } else {
    record.data = Uint8Array.from(r.b.subarray(r.at, end));
  }
  r.at = end;
  return record;
}

/** Parses a DNS message; an error string for anything malformed. */
export function parseDns(buf: Uint8Array, off = 0, len = buf.length - off): DnsMessage | string {
  if (off < 0 || off + len > buf.length) return 'dns-bad-bounds';
  if (len < HEADER_LEN) return 'dns-too-short';
  const r = new Reader(buf.subarray(off, off + len), 0);
  const id = r.u16();
  const flags = r.u16();
  const counts = [r.u16(), r.u16(), r.u16(), r.u16()];
  const m: DnsMessage = {
    id,
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    recursionDesired: (flags & 0x0100) !== 0,
    recursionAvailable: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  };
  for (let i = 0; i < counts[0]!; i++) {
    const name = readName(r);
    if (typeof name !== 'string') return name.error;
    if (!r.has(4)) return 'dns-question-truncated';
    m.questions.push({ name, type: r.u16(), class: r.u16() });
  }
  const sections = [m.answers, m.authorities, m.additionals];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      // A truncated response may stop in the middle of a section (RFC 2181 9): keep what is whole.
      if (m.truncated && r.at >= r.b.length) return m;
      const record = readRecord(r);
      if (typeof record === 'string') return m.truncated ? m : record;
      sections[s]!.push(record);
    }
  }
  return m;
}

/** Writes a name uncompressed; -1 when it does not fit or is not a valid name. */
function writeName(b: Uint8Array, at: number, end: number, name: string): number {
  if (name !== '') {
    let wire = 1;
    for (const label of name.split('.')) {
      const bytes = Buffer.from(label, 'latin1');
      if (bytes.length === 0 || bytes.length > MAX_LABEL) return -1;
      wire += bytes.length + 1;
      if (wire > MAX_NAME || at + 1 + bytes.length > end) return -1;
      b[at] = bytes.length;
      b.set(bytes, at + 1);
      at += 1 + bytes.length;
    }
  }
  if (at >= end) return -1;
  b[at] = 0;
  return at + 1;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, (v >>> 16) & 0xffff);
  put16(b, at + 2, v & 0xffff);
}

function writeRecord(b: Uint8Array, at: number, end: number, rec: DnsRecord): number {
  at = writeName(b, at, end, rec.name);
  if (at < 0 || at + 10 > end) return -1;
  put16(b, at, rec.type);
  put16(b, at + 2, rec.class);
  put32(b, at + 4, rec.ttl);
  const rdata = at + 10;
  let after: number;
  if (rec.address !== undefined) {
    if (rdata + 4 > end) return -1;
    put32(b, rdata, rec.address);
    after = rdata + 4;
  } else if (rec.target !== undefined) {
    after = writeName(b, rdata, end, rec.target);
    if (after < 0) return -1;
  } else {
    const data = rec.data ?? new Uint8Array(0);
    if (rdata + data.length > end || data.length > 0xffff) return -1;
    b.set(data, rdata);
    after = rdata + data.length;
  }
  put16(b, at + 8, after - rdata);
  return after;
}

/**
 * Writes `m` at buf[off..]; returns its length, or -1 when it does not fit in `limit` bytes
 * or holds an invalid name.
 */
export function emitDns(m: DnsMessage, buf: Uint8Array, off = 0, limit = buf.length - off): number {
  const end = Math.min(buf.length, off + limit);
  if (end - off < HEADER_LEN) return -1;
  const sections = [m.answers, m.authorities, m.additionals];
  if (m.questions.length > 0xffff || sections.some((s) => s.length > 0xffff)) return -1;
  put16(buf, off, m.id);
  const flags =
    (m.response ? 0x8000 : 0) |
    ((m.opcode & 0xf) << 11) |
    (m.authoritative ? 0x0400 : 0) |
    (m.truncated ? 0x0200 : 0) |
    (m.recursionDesired ? 0x0100 : 0) |
    (m.recursionAvailable ? 0x0080 : 0) |
    (m.rcode & 0xf);
  put16(buf, off + 2, flags);
  put16(buf, off + 4, m.questions.length);
  for (let s = 0; s < 3; s++) put16(buf, off + 6 + 2 * s, sections[s]!.length);
  let at = off + HEADER_LEN;
  for (const q of m.questions) {
    at = writeName(buf, at, end, q.name);
    if (at < 0 || at + 4 > end) return -1;
    put16(buf, at, q.type);
    put16(buf, at + 2, q.class);
    at += 4;
  }
  for (const section of sections)
    for (const rec of section) {
      at = writeRecord(buf, at, end, rec);
      if (at < 0) return -1;
    }
  return at - off;
}

/**
 * The addresses a response gives for `name` (RFC 1034 3.6.2, 5.2.2): the A records of the
 * name, or of the name its CNAME chain leads to (at most 8 links, as glibc's res_send
 * bounds its aliases, so a CNAME loop ends). Returns the lowest TTL seen on the way.
 */
export function answerAddresses(m: DnsMessage, name: string): { addresses: number[]; ttl: number } {
  let current = name.toLowerCase();
  let ttl = Infinity;
  const addresses: number[] = [];
  for (let hops = 0; hops <= 8; hops++) {
    let next: string | null = null;
    for (const rec of m.answers) {
      if (rec.class !== CLASS_IN || rec.name.toLowerCase() !== current) continue;
      if (rec.type === TYPE_A && rec.address !== undefined) {
        addresses.push(rec.address);
        ttl = Math.min(ttl, rec.ttl);
      } else if (rec.type === TYPE_CNAME && rec.target !== undefined && next === null) {
        next = rec.target.toLowerCase();
        ttl = Math.min(ttl, rec.ttl);
      }
    }
    if (addresses.length > 0 || next === null) break;
    current = next;
  }
  return { addresses, ttl: ttl === Infinity ? 0 : ttl };
}
