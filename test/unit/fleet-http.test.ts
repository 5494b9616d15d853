// A fleet's devices share one http.Server (src/services/http.ts): each request is served for
// the device it reached (its /stats, its counters); removing a device leaves the others
// serving; closing the fleet closes the server. Real time over an in-memory link (Node's http
// keeps its own timers); no root.

import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createFleet } from '../../src/fleet/fleet.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { sharedHttpServerCount } from '../../src/services/http.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { HeapClock } from '../../src/util/clock.ts';

function get(from: Stack, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, path, createConnection: () => from.connect({ host, port: 80 }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('one http.Server for the fleet; each request served and counted by its own device', async () => {
  const clock = new HeapClock();
  const [hostLink, fleetLink] = createLinkPair(clock);
  const host = await createStack({ link: hostLink, clock, ip: '10.0.0.1/16', seed: 1 });
  const before = sharedHttpServerCount();
  const fleet = await createFleet({ count: 20, link: fleetLink, clock, ip: '10.0.1.1/16', gateway: '10.0.0.1', services: ['http'], seed: 5 });
  try {
    assert.is(sharedHttpServerCount(), before + 1, 'one server for 20 devices');
    for (const i of [0, 7, 19]) {
      const r = await get(host, `10.0.1.${i + 1}`, '/stats');
      assert.is(r.status, 200);
      const stats = JSON.parse(r.body) as { ipv4: { rx: number } };
      // The device's own counters: it received the request's datagrams.
      assert.ok(stats.ipv4.rx > 0);
    }
    const served = fleet.devices.map((d) => d.stack.counters().http?.rx ?? 0);
    assert.equal(served.filter((n) => n > 0).length, 3);
    assert.is(served[7], 1);
    await fleet.remove(fleet.devices[7]!);
    assert.is(sharedHttpServerCount(), before + 1);
    assert.is((await get(host, '10.0.1.20', '/bytes/5')).body.length, 5);
  } finally {
    await fleet.close();
    await host.close();
  }
  assert.is(sharedHttpServerCount(), before, 'closed with the last device');
});

test.run();
