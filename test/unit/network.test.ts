// A network from a JSON description (examples/networks/two-lans.json): two switches, a
// router, four devices, netem shapes on two plugs; traffic across it in virtual time, and
// the same seed giving the same pcap, byte for byte.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PcapSink } from '../../src/link/pcap.ts';
import { createNetwork, loadNetworkSpec } from '../../src/network.ts';

const SPEC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/networks/two-lans.json');

class BufferSink implements PcapSink {
  readonly chunks: Buffer[] = [];
  write(buf: Uint8Array, off: number, len: number): void {
    this.chunks.push(Buffer.from(buf.subarray(off, off + len)));
  }
  close(): void {}
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

async function transfer(seed: number): Promise<{ pcap: Buffer; echoed: number; lost: number }> {
  const sink = new BufferSink();
  const net = await createNetwork(loadNetworkSpec(SPEC), { seed, pcap: sink });
  net.device('server').createServer((s) => s.pipe(s)).listen(7);
  const client = net.device('laptop').connect({ host: '10.0.2.40', port: 7 });
  let echoed = 0;
  client.on('data', (d: Buffer) => (echoed += d.length));
  client.write(Buffer.alloc(50_000, 3));
  // The lossy sensor sends its reading to the laptop across the router.
  const got: string[] = [];
  net.device('laptop').createSocket('udp4', (m) => got.push(m.toString())).bind(5000);
  const sensor = net.device('sensor').createSocket('udp4');
  for (let i = 0; i < 20; i++) sensor.send(`reading ${i}`, 5000, '10.0.1.10');
  await net.run(5000);
  client.destroy();
  await net.run(100);
  const lost = 20 - got.length;
  await net.close();
  return { pcap: sink.bytes(), echoed, lost };
}

test('two LANs through a router from a JSON description: TCP across, lossy UDP across', async () => {
  const r = await transfer(1);
  assert.is(r.echoed, 50_000);
  assert.ok(r.lost < 10, `${r.lost} of 20 readings lost on a 2% lossy plug`);
  assert.ok(r.pcap.length > 100_000, `${r.pcap.length} bytes of capture`);
});

test('the same seed gives the same pcap, byte for byte; another seed another one', async () => {
  const a = await transfer(42);
  const b = await transfer(42);
  assert.ok(a.pcap.equals(b.pcap), 'same seed, same bytes');
  const c = await transfer(43);
  assert.not.ok(a.pcap.equals(c.pcap), 'another seed draws other ISNs and losses');
});

test('a description naming a switch it does not have is refused', async () => {
  let error = '';
  try {
    await createNetwork({ switches: ['a'], devices: [{ name: 'x', switch: 'b', ip: '10.0.0.1/24' }] });
  } catch (e) {
    error = (e as Error).message;
  }
  assert.match(error, 'x: no switch b');
});

test.run();
