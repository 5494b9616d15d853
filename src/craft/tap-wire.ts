// The far side of the host's Linux: a TAP device whose other end is the kernel. The caller
// runs this inside a network namespace it made (the TAP is created in the namespace of the
// process that opens it); the kernel's end gets `hostCidr`, and the wire plays a host at
// `ip` on that segment, answering the kernel's ARP for it.

import fs from 'node:fs';
import { configureHostSide, TapDevice } from '../tap/tap.ts';
import { RealClock } from '../util/clock.ts';
import { type Ipv4Input, type MacInput } from './layers.ts';
import { Wire } from './wire.ts';

export interface TapWireOptions {
  /** TAP device name (created if absent, gone when closed). */
  name: string;
  /** The kernel's address on the TAP, with its prefix: '10.0.0.1/24'. */
  hostCidr: string;
  /** The wire's own address and MAC on that segment. */
  ip: Ipv4Input;
  mac?: MacInput;
  mtu?: number;
  answerArp?: boolean;
}

export function openTapWire(options: TapWireOptions): Wire {
  const mtu = options.mtu ?? 1500;
  const tap = TapDevice.open({ name: options.name, mtu });
  try {
    configureHostSide(options.name, options.hostCidr, mtu);
  } catch (err) {
    void tap.close();
    throw err;
  }
  // The kernel's MAC on the TAP, so that the first crafted frame can go to it unasked.
  const kernelMac = fs.readFileSync(`/sys/class/net/${options.name}/address`, 'utf8').trim();
  return new Wire(tap, {
    ip: options.ip,
    mac: options.mac ?? '02:00:00:00:00:02',
    peerIp: options.hostCidr.split('/')[0]!,
    peerMac: kernelMac,
    answerArp: options.answerArp,
    clock: new RealClock(),
  });
}
