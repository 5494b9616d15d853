// A fleet of sensors behind a router, as a real site would have them: --count devices (a
// stack each, src/fleet/) on one in-memory Ethernet segment, a tapstack Router between that
// segment (10.1.0.1/16) and a TAP (10.0.0.2/24, the host's kernel at 10.0.0.1), relaying
// DHCP to the host's server (src/dhcp/relay.ts). Each device boots with DHCP, resolves the
// broker's name through the DNS server its lease names, connects an unmodified mqtt.js
// MqttClient over its own TCP socket (the stream builder of examples/mqtt.ts), publishes
// --readings sensor readings (QoS 1, JSON) to sensors/<name>, --interval-ms apart, and
// disconnects once every device has published. The host's kernel holds one neighbour (the
// router), whatever the count; the broker sees one client per device, each from its own
// address. Run it in a network namespace of your own, with the TAP made, dnsmasq serving
// 10.1.0.0/16 (through the relay) and DNS, mosquitto on 10.0.0.1, and
// `ip route add 10.1.0.0/16 via 10.0.0.2`: `npm run demo:mqtt-fleet`
// (bench/mqtt-fleet.ts) does all of it.
//
//   ip netns exec lab node --import tsx examples/mqtt-fleet.ts --count 1000 --broker broker.lab
//
// Options: --count N (1000), --tap NAME (tap0), --broker NAME (broker.lab), --port N (1883),
// --readings N (3), --interval-ms MS (1000), --router-ip A.B.C.D/N (10.0.0.2/24),
// --fleet-gateway A.B.C.D/N (10.1.0.1/16), --dhcp-server A.B.C.D (10.0.0.1), --concurrency N
// (connections being opened at once, 100), --name BASE (sensor), --seed N, --deadline-s S
// (300: everything, or exit 1). It prints one line a phase, then `figures {json}` and
// `result ok` (exit 0) only if every device bound, resolved, connected, published every
// reading and disconnected without an error.

import { parseArgs } from 'node:util';
import { MqttClient } from 'mqtt';
import { createFleet, createLinkPair, type Device, RealClock, Router, TapDevice, type LookupAddress, type TcpSocket } from '../src/index.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    tap: { type: 'string', default: 'tap0' },
    broker: { type: 'string', default: 'broker.lab' },
    port: { type: 'string', default: '1883' },
    readings: { type: 'string', default: '3' },
    'interval-ms': { type: 'string', default: '1000' },
    'router-ip': { type: 'string', default: '10.0.0.2/24' },
    'fleet-gateway': { type: 'string', default: '10.1.0.1/16' },
    'dhcp-server': { type: 'string', default: '10.0.0.1' },
    concurrency: { type: 'string', default: '100' },
    name: { type: 'string', default: 'sensor' },
    seed: { type: 'string' },
    'deadline-s': { type: 'string', default: '300' },
  },
});

function positive(name: string, text: string | undefined, min = 1): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`mqtt-fleet: --${name} wants an integer >= ${min}, not ${text}`);
    process.exit(2);
  }
  return n;
}
const count = positive('count', values.count);
const readings = positive('readings', values.readings, 0);
const intervalMs = positive('interval-ms', values['interval-ms'], 0);
const concurrency = positive('concurrency', values.concurrency);
const port = positive('port', values.port);
const deadlineS = positive('deadline-s', values['deadline-s']);
const seed = values.seed === undefined ? undefined : positive('seed', values.seed, 0);
/** Each connection's own bound: CONNACK within this, or it counts as an error. */
const CONNECT_TIMEOUT_MS = 30_000;
/** Devices that power on together (see createFleet's setup below). */
const POWER_ON_BATCH = 50;
/** A DISCONNECTed connection's FIN exchange, at the most. */
const CLOSE_TIMEOUT_MS = 10_000;

const started = performance.now();
const seconds = (since: number): number => Math.round((performance.now() - since) / 100) / 10;
const figures = {
  devices: count,
  bound: 0,
  boundSeconds: 0,
  resolved: 0,
  connected: 0,
  connectedSeconds: 0,
  published: 0,
  publishedSeconds: 0,
  disconnected: 0,
  errors: 0,
  firstErrors: [] as string[],
  relay: { requests: 0, replies: 0 },
  routerForwarded: 0,
  /** What the router's interfaces dropped, 'interface layer:reason' -> count (ARP, IP, UDP ...). */
  routerDrops: {} as Record<string, number>,
  rssMiB: 0,
  maxRssMiB: 0,
  totalSeconds: 0,
};
const error = (what: string): void => {
  figures.errors++;
  if (figures.firstErrors.length < 5) figures.firstErrors.push(what);
};

let router: Router | null = null;
function finish(ok: boolean): never {
  if (router !== null) {
    figures.relay = { requests: router.dhcpRelay!.counters.requests, replies: router.dhcpRelay!.counters.replies };
    figures.routerForwarded = router.counters.forwarded;
    router.interfaces.forEach((stack, i) => {
      for (const [layer, c] of Object.entries(stack.counters())) for (const [reason, n] of Object.entries(c.drops)) if (n > 0) figures.routerDrops[`${i} ${layer}:${reason}`] = n;
    });
  }
  figures.rssMiB = Math.round(process.memoryUsage().rss / 2 ** 20);
  figures.maxRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  figures.totalSeconds = seconds(started);
  console.log(`figures ${JSON.stringify(figures)}`);
  console.log(ok ? 'result ok' : 'result FAILED');
  // The devices' timers and the TAP's reader would keep the process: the figures are out, go.
  process.exit(ok ? 0 : 1);
}
// Everything is bounded: whatever is still under way at the deadline is a failure (the timer
// also holds the event loop, so that nothing can end the run without its figures).
setTimeout(() => {
  error(`deadline of ${deadlineS} s`);
  finish(false);
}, deadlineS * 1000);

const clock = new RealClock();
const tap = TapDevice.open({ name: values.tap });
const [fleetEnd, routerEnd] = createLinkPair(clock);
router = await Router.create({
  clock,
  seed,
  interfaces: [
    { link: tap, ip: values['router-ip'] },
    // One neighbour entry per device, and room for more than Linux's default 1,024.
    { link: routerEnd, ip: values['fleet-gateway'], arp: { maxEntries: count + 256 } },
  ],
  dhcpRelay: { server: values['dhcp-server'] },
});
const bootStart = performance.now();
const fleet = await createFleet({
  count,
  link: fleetEnd,
  dhcp: true,
  name: values.name,
  seed,
  clock,
  // Devices made in one go would all broadcast their DISCOVER in one turn of the event loop,
  // more than the relay's socket buffer (SO_RCVBUF) and the router's ARP queue for the server
  // (Linux unres_qlen) hold, and wait 4 s to retransmit (RFC 2131 4.1). A site's devices power
  // on over a moment: here the event loop turns after every POWER_ON_BATCH devices.
  setup: (_device, i) => (i % POWER_ON_BATCH === POWER_ON_BATCH - 1 ? new Promise<void>((r) => setImmediate(r)) : undefined),
});
console.log(`mqtt-fleet: ${count} devices ${values.name}-0..${values.name}-${count - 1} behind the router ${values['router-ip']} / ${values['fleet-gateway']}, DHCP relayed to ${values['dhcp-server']}`);
try {
  // Short of the deadline, so that the figures say how many bound.
  await fleet.ready(Math.max(1000, deadlineS * 1000 - (performance.now() - started) - 2000));
} catch (err) {
  error((err as Error).message);
}
figures.bound = fleet.devices.filter((d) => d.address !== null).length;
figures.boundSeconds = seconds(bootStart);
console.log(`leases bound ${figures.bound}/${count} in ${figures.boundSeconds} s`);
if (figures.bound < count) finish(false);

/** One device's connection, once it is up. */
interface Session {
  device: Device;
  client: MqttClient;
  socket: TcpSocket;
}

/** Resolves the broker's name with the device's own resolver (its lease's DNS server), then MQTT CONNECT. */
async function connect(device: Device): Promise<Session | null> {
  let address: string;
  try {
    address = ((await device.stack.dns.promises.lookup(values.broker)) as LookupAddress).address;
    figures.resolved++;
  } catch (err) {
    error(`${device.name}: lookup ${values.broker}: ${(err as Error).message}`);
    return null;
  }
  let socket: TcpSocket | undefined;
  const client = new MqttClient(() => (socket = device.stack.connect(port, address)), {
    clientId: device.name,
    reconnectPeriod: 0, // one connection: a failure is counted, not retried
    connectTimeout: CONNECT_TIMEOUT_MS,
  });
  client.on('error', (err) => error(`${device.name}: ${err.message}`));
  // With reconnectPeriod 0 a failed attempt ends in 'close'; the timer is the bound if nothing comes.
  const up = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), CONNECT_TIMEOUT_MS + 1000);
    client.once('connect', () => (clearTimeout(timer), resolve(true)));
    client.once('close', () => (clearTimeout(timer), resolve(false)));
  });
  if (!up) {
    error(`${device.name}: no CONNACK`);
    client.end(true);
    return null;
  }
  return { device, client, socket: socket! };
}

/** `n` at a time, as a device management service would pace a fleet's start. */
async function eachLimited<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

const connectStart = performance.now();
const sessions = (await eachLimited(fleet.devices, concurrency, connect)).filter((s): s is Session => s !== null);
figures.connected = sessions.length;
figures.connectedSeconds = seconds(connectStart);
console.log(`resolved ${values.broker} on ${figures.resolved}/${count} devices; connected ${figures.connected}/${count} in ${figures.connectedSeconds} s`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** QoS 1: a reading counts once the broker's PUBACK is back. The first one at a random point of the interval, so that the fleet does not publish in step. */
async function publish(s: Session, index: number): Promise<void> {
  await sleep(Math.floor(((index * 7919) % 1000) / 1000 * intervalMs));
  for (let seq = 0; seq < readings; seq++) {
    if (seq > 0) await sleep(intervalMs);
    const reading = { device: s.device.name, address: s.device.address, seq, temperature: Math.round((20 + 5 * Math.sin(index + seq)) * 10) / 10, at: Date.now() };
    try {
      await s.client.publishAsync(`sensors/${s.device.name}`, JSON.stringify(reading), { qos: 1 });
      figures.published++;
    } catch (err) {
      error(`${s.device.name}: publish: ${(err as Error).message}`);
      return;
    }
  }
}

const publishStart = performance.now();
await Promise.all(sessions.map((s, i) => publish(s, i)));
figures.publishedSeconds = seconds(publishStart);
console.log(`published ${figures.published}/${count * readings} readings (QoS 1, acknowledged) in ${figures.publishedSeconds} s`);

/** DISCONNECT, then the connection ends with FINs. */
async function disconnect(s: Session): Promise<void> {
  const closed = new Promise<boolean>((resolve) => {
    s.socket.once('close', resolve);
    setTimeout(() => resolve(true), CLOSE_TIMEOUT_MS).unref();
  });
  await s.client.endAsync();
  if (await closed) error(`${s.device.name}: the connection did not close cleanly`);
  else figures.disconnected++;
}
await Promise.all(sessions.map(disconnect));
console.log(`disconnected ${figures.disconnected}/${count}`);
finish(figures.bound === count && figures.connected === count && figures.published === count * readings && figures.disconnected === count && figures.errors === 0);
