// Name resolution through Node's dns.lookup contract, the `lookup` option of net.connect:
// lookup(hostname, { family, hints, all }, callback(err, address, family)), or with all:
// callback(err, [{ address, family }]). The stack's default knows no names but 'localhost'.

import { isIP } from 'node:net';
import { formatIpv4 } from '../ipv4/address.ts';

export interface LookupAddress {
  address: string;
  family: number;
}

export interface LookupOptions {
  family?: number;
  hints?: number;
  all?: boolean;
}

export type LookupCallback = (err: NodeJS.ErrnoException | null, address?: string | LookupAddress[], family?: number) => void;
export type LookupFunction = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

/** libuv's UV_EAI_NONAME, what Node puts in errno for ENOTFOUND. */
const UV_EAI_NONAME = -3008;

/** A getaddrinfo failure shaped like Node's dns errors (lib/internal/errors.js DNSException). */
export function notFound(hostname: string): NodeJS.ErrnoException & { hostname: string } {
  const err = new Error(`getaddrinfo ENOTFOUND ${hostname}`) as NodeJS.ErrnoException & { hostname: string };
  err.errno = UV_EAI_NONAME;
  err.code = 'ENOTFOUND';
  err.syscall = 'getaddrinfo';
  err.hostname = hostname;
  return err;
}

/**
 * The default resolver: IPv4 literals as they are, and 'localhost' as the stack's own
 * address (Node's is 127.0.0.1 from /etc/hosts; the stack has no loopback network, and its
 * own address reaches it the same way). Any other name, or IPv6 only: ENOTFOUND.
 */
export function defaultLookup(ownIp: number): LookupFunction {
  return (hostname, options, callback) => {
    let address: string | null = null;
    if (isIP(hostname) === 4) address = hostname;
    else if (hostname.toLowerCase() === 'localhost') address = formatIpv4(ownIp);
    const err = address === null || options.family === 6 ? notFound(hostname) : null;
    // dns.lookup never calls back synchronously.
    if (err) process.nextTick(callback, err);
    else if (options.all) process.nextTick(callback, null, [{ address: address!, family: 4 }]);
    else process.nextTick(callback, null, address!, 4);
  };
}
