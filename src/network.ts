// A virtual network in virtual time, described in code or in a small JSON file: switches
// (segments), devices (one stack each) and routers plugged into them, each plug a link that
// may have a netem shape (delay, loss, rate, ...). The same description and seed give the
// same frames: every random choice (ISNs, ports, netem's losses) comes from the seed, every
// timer from the one clock; `pcap` writes every frame on every plug into one capture.

import { readFileSync } from 'node:fs';
import type { Link } from './link/link.ts';
import { NetemLink, type NetemShape } from './link/netem.ts';
import { CapturingLink, type PcapSink, PcapWriter } from './link/pcap.ts';
import { LearningSwitch } from './link/switch.ts';
import { Router, type StaticRoute } from './router.ts';
import { createStack, type Stack } from './stack.ts';
import { VirtualClock } from './util/clock.ts';

/** Where something plugs in: a switch, the plug's own netem shape (both ways), and its address. */
export interface Plug {
  switch: string;
  /** '10.0.1.2/24' */
  ip: string;
  mac?: string;
  shape?: NetemShape;
}

export interface DeviceSpec extends Plug {
  name: string;
  gateway?: string;
}

export interface RouterSpec {
  name: string;
  interfaces: Plug[];
  routes?: StaticRoute[];
}

export interface NetworkSpec {
  switches: string[];
  devices?: DeviceSpec[];
  routers?: RouterSpec[];
}

export interface NetworkOptions {
  seed?: number;
  clock?: VirtualClock;
  /** Capture every frame each plug sends and receives (file path or sink). */
  pcap?: string | PcapSink;
}

export class Network {
  constructor(
    readonly clock: VirtualClock,
    readonly switches: ReadonlyMap<string, LearningSwitch>,
    readonly devices: ReadonlyMap<string, Stack>,
    readonly routers: ReadonlyMap<string, Router>,
    private readonly capture: PcapWriter | null,
  ) {}

  device(name: string): Stack {
    const d = this.devices.get(name);
    if (!d) throw new Error(`no device ${name}`);
    return d;
  }

  /** Lets virtual time run for ms, with Node's own turns between timers (stream events). */
  async run(ms: number, stepMs = 10): Promise<void> {
    const until = this.clock.now() + ms;
    while (this.clock.now() < until) {
      this.clock.advance(Math.min(stepMs, until - this.clock.now()));
      await new Promise((r) => setImmediate(r));
    }
  }

  async close(): Promise<void> {
    for (const d of this.devices.values()) await d.close();
    for (const r of this.routers.values()) await r.close();
    this.capture?.close();
  }
}

/** A JSON description (the NetworkSpec shape) from a file. */
export function loadNetworkSpec(path: string): NetworkSpec {
  return JSON.parse(readFileSync(path, 'utf8')) as NetworkSpec;
}

export async function createNetwork(spec: NetworkSpec, options: NetworkOptions = {}): Promise<Network> {
  const clock = options.clock ?? new VirtualClock();
  const seed = options.seed ?? 1;
  // Each plug draws its own seeds from the network's, in the description's order.
  let draw = 0;
  const nextSeed = (): number => (seed * 7919 + ++draw * 104729) >>> 0;
  const capture = options.pcap ? new PcapWriter(options.pcap) : null;
  const switches = new Map<string, LearningSwitch>();
  for (const name of spec.switches) {
    if (switches.has(name)) throw new Error(`switch ${name} twice`);
    switches.set(name, new LearningSwitch(clock));
  }
  const plug = (p: Plug, owner: string): Link => {
    const sw = switches.get(p.switch);
    if (!sw) throw new Error(`${owner}: no switch ${p.switch}`);
    let link: Link = sw.connect();
    if (p.shape) link = new NetemLink(link, clock, { seed: nextSeed(), both: p.shape });
    // Virtual time since the start as the capture's clock: the same run, the same file.
    if (capture) link = new CapturingLink(link, capture, () => clock.now());
    return link;
  };
  const devices = new Map<string, Stack>();
  for (const d of spec.devices ?? []) {
    if (devices.has(d.name)) throw new Error(`device ${d.name} twice`);
    devices.set(d.name, await createStack({ link: plug(d, d.name), clock, ip: d.ip, mac: d.mac, gateway: d.gateway, seed: nextSeed() }));
  }
  const routers = new Map<string, Router>();
  for (const r of spec.routers ?? []) {
    const interfaces = r.interfaces.map((i) => ({ link: plug(i, r.name), ip: i.ip, mac: i.mac }));
    routers.set(r.name, await Router.create({ clock, seed: nextSeed(), interfaces, routes: r.routes }));
  }
  return new Network(clock, switches, devices, routers, capture);
}
