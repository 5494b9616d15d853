// An MQTT client (the mqtt package) on a stack on a TAP, talking to a broker on the host's
// side, such as mosquitto on 10.0.0.1:1883. mqtt's MqttClient takes a stream builder: each
// (re)connection is a TCP connection of the stack. Run it inside a network namespace of your
// own (it needs root for the TAP), with the broker listening on the host's address:
//
//   ip netns exec lab node --import tsx examples/mqtt.ts --tap tap0 mqtt://10.0.0.1:1883
//
// It subscribes to tapstack/echo and tapstack/to-stack, publishes a random message to
// tapstack/echo and checks that the broker sends it back, publishes --send FILE (retained)
// to tapstack/from-stack, prints `ready`, then waits up to --wait-ms for one message on
// tapstack/to-stack, prints its size and SHA-256, and disconnects.
//
// Options: --tap NAME (tap0), --ip A.B.C.D/N (10.0.0.2/24), --host-ip A.B.C.D/N (10.0.0.1/24),
// --send FILE (default: 1 KiB of random bytes), --wait-ms MS (30000; 0: do not wait).

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MqttClient } from 'mqtt';
import { createStack, type TcpSocket } from '../src/index.ts';
import { sha256 } from './common.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    tap: { type: 'string', default: 'tap0' },
    ip: { type: 'string', default: '10.0.0.2/24' },
    'host-ip': { type: 'string', default: '10.0.0.1/24' },
    send: { type: 'string' },
    'wait-ms': { type: 'string', default: '30000' },
  },
});
const broker = new URL(positionals[0] ?? 'mqtt://10.0.0.1:1883');
const stack = await createStack({ tap: values.tap, ip: values.ip, hostIp: values['host-ip'] });

let socket: TcpSocket | undefined;
const client = new MqttClient(
  () => (socket = stack.connect(Number(broker.port || 1883), broker.hostname)),
  { clientId: `tapstack-${process.pid}`, reconnectPeriod: 0 }, // one connection: fail rather than retry
);
const messages = new Map<string, (payload: Buffer) => void>();
const nextMessage = (topic: string): Promise<Buffer> => new Promise((resolve) => messages.set(topic, resolve));
client.on('message', (topic, payload) => messages.get(topic)?.(payload));
client.on('error', (err) => {
  console.error(`mqtt: ${err.message}`);
  process.exit(1);
});

await new Promise((resolve) => client.once('connect', resolve));
await client.subscribeAsync(['tapstack/echo', 'tapstack/to-stack'], { qos: 1 });

// Our own message comes back through the broker.
const echo = randomBytes(100_000);
const echoed = nextMessage('tapstack/echo');
await client.publishAsync('tapstack/echo', echo, { qos: 1 });
const back = await echoed;
console.log(`echo bytes=${back.length} sha256=${sha256(back)} ${sha256(back) === sha256(echo) ? 'ok' : 'MISMATCH'}`);

// Retained, so a subscriber that comes later still gets it.
const send = values.send ? readFileSync(values.send) : randomBytes(1024);
await client.publishAsync('tapstack/from-stack', send, { qos: 1, retain: true });
console.log(`sent topic=tapstack/from-stack bytes=${send.length} sha256=${sha256(send)}`);
console.log('ready');

const waitMs = Number(values['wait-ms']);
if (waitMs > 0) {
  const timeout = new Promise<null>((resolve) => setTimeout(resolve, waitMs, null).unref());
  const received = await Promise.race([nextMessage('tapstack/to-stack'), timeout]);
  if (received) console.log(`received topic=tapstack/to-stack bytes=${received.length} sha256=${sha256(received)}`);
  else console.log(`received nothing on tapstack/to-stack in ${waitMs} ms`);
}

// DISCONNECT, then the connection ends with FINs.
const closed = new Promise<boolean>((resolve) => socket!.once('close', resolve));
await client.endAsync();
const hadError = await closed;
console.log(`closed hadError=${hadError} resets=${stack.tcp.counters.resetsSent}`);
await stack.close();
process.exit(sha256(back) === sha256(echo) && !hadError ? 0 : 1);
