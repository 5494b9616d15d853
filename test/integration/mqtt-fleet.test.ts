// examples/mqtt-fleet.ts with 100 devices in a namespace of the test's
// (test/helpers/mqtt-fleet-lab.ts): behind the tapstack router, every device gets its lease
// from dnsmasq through the router's DHCP relay, resolves broker.lab through dnsmasq, and
// publishes its readings over mqtt.js to mosquitto. The broker sees 100 clients from 100
// addresses, the subscriber every reading with the address its device connected from, and
// the kernel one neighbour: the router.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hasMosquitto } from '../helpers/mosquitto.ts';
import { runMqttFleetLab } from '../helpers/mqtt-fleet-lab.ts';
import { run } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';

const hasDnsmasq = (await run('sh', ['-c', 'command -v dnsmasq'])).code === 0;
const it = canUseTap && hasDnsmasq && hasMosquitto() ? test : test.skip;

it('100 devices behind a router: DHCP relayed to dnsmasq, the broker by name, readings over MQTT from 100 addresses', async () => {
  const count = 100;
  const readings = 2;
  const lab = await runMqttFleetLab({ count, readings, intervalMs: 500, deadlineS: 40, seed: 1 });
  const why = `${lab.stdout}\n${lab.stderr}`;
  assert.is(lab.exitCode, 0, why);
  assert.match(lab.stdout, /^result ok$/m);
  const figures = lab.figures!;
  assert.equal([figures.bound, figures.resolved, figures.connected, figures.published, figures.disconnected, figures.errors], [count, count, count, count * readings, count, 0], why);
  assert.is(lab.dnsmasqLeases, count);
  // Every lease went through the relay: a DISCOVER and a REQUEST each, an OFFER and an ACK back
  // (more when a client retransmits, RFC 2131 4.1, say when dnsmasq's socket overflowed).
  const relay = figures.relay as { requests: number; replies: number };
  assert.ok(relay.requests >= 2 * count && relay.requests <= 4 * count, `relay requests ${relay.requests}`);
  assert.ok(relay.replies >= 2 * count && relay.replies <= relay.requests, `relay replies ${relay.replies}`);
  assert.is(lab.clients.size, count);
  const addresses = [...lab.clients.values()];
  assert.is(new Set(addresses).size, count, 'one address per client');
  assert.ok(addresses.every((a) => a.startsWith('10.1.')), 'addresses of the relayed subnet');
  assert.is(lab.messages, count * readings);
  assert.is(lab.devicesHeard, count);
  assert.is(lab.addressMismatches, 0);
  assert.equal(lab.kernelNeighbours.map((l) => l.split(' ')[0]), ['10.0.0.2'], 'the router is the one neighbour');
  process.stdout.write(`  ${lab.stdout.split('\n').filter((l) => /^(leases|resolved|published)/.test(l)).join('; ')}\n`);
});

test.run();
