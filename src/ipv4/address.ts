// IPv4 addresses are carried as unsigned 32-bit numbers inside the stack: comparisons and
// masks are then plain arithmetic, with no string or object per packet.

export function parseIpv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value >>> 0;
}

export function formatIpv4(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`;
}

export interface Cidr {
  addr: number;
  prefix: number;
}

/** Parses "A.B.C.D/N" (or a bare address, taken as /32 unless defaultPrefix is given). */
export function parseCidr(text: string, defaultPrefix = 32): Cidr | null {
  const [a, p] = text.split('/');
  const addr = parseIpv4(a ?? '');
  if (addr === null) return null;
  const prefix = p === undefined ? defaultPrefix : /^\d{1,2}$/.test(p) ? Number(p) : NaN;
  if (!(prefix >= 0 && prefix <= 32)) return null;
  return { addr, prefix };
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function sameSubnet(a: number, b: number, prefix: number): boolean {
  const m = prefixMask(prefix);
  return ((a & m) >>> 0) === ((b & m) >>> 0);
}

export const IPV4_BROADCAST = 0xffffffff;

export function isMulticast(addr: number): boolean {
  return addr >>> 28 === 0xe;
}

/** 0.0.0.0/8, "this network" (RFC 1122 3.2.1.3 (a), (b)); Linux ipv4_is_zeronet. */
export function isZeroNet(addr: number): boolean {
  return addr >>> 24 === 0;
}

/** 127.0.0.0/8 (RFC 1122 3.2.1.3 (g)); Linux ipv4_is_loopback. */
export function isLoopback(addr: number): boolean {
  return addr >>> 24 === 127;
}

/** 240.0.0.0/4, class E, the limited broadcast included (RFC 1812 5.3.7); Linux ipv4_is_badclass. */
export function isClassE(addr: number): boolean {
  return addr >>> 28 === 0xf;
}
