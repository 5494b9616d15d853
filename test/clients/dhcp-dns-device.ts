// A device on the stack's API over a TAP, run inside a test namespace: boots by DHCP, looks
// a name up through the lease's DNS server, connects to it by name and echoes a message.
// Bounded in time (DEVICE_TIMEOUT s). Prints one line "RESULT key=value ...".
//
//   dhcp-dns-device.ts TAP NAME PORT

import { createStack } from '../../src/index.ts';
import type { DhcpLease } from '../../src/dhcp/client.ts';

const [tap, name, portText] = process.argv.slice(2);
const started = performance.now();
const ms = (): number => Math.round(performance.now() - started);
setTimeout(() => {
  process.stdout.write('RESULT error=timeout\n');
  process.exit(2);
}, Number(process.env.DEVICE_TIMEOUT ?? 60) * 1000).unref();

const stack = await createStack({ tap: tap!, dhcp: true });
stack.ref();
const lease = await new Promise<DhcpLease>((resolve) => stack.dhcp!.once('bound', resolve));
const boundMs = ms();
const looked = (await stack.dns.promises.lookup(name!)) as { address: string };
const echoed = await new Promise<string>((resolve, reject) => {
  const s = stack.connect({ host: name!, port: Number(portText) });
  let lookupAddress = '';
  s.on('lookup', (_err, address: string) => (lookupAddress = address));
  s.on('connect', () => s.write('hello by name\n'));
  s.on('data', (d: Buffer) => {
    s.end();
    resolve(`${lookupAddress}:${d.toString().trim().replace(/\s+/g, '_')}`);
  });
  s.on('error', reject);
});
process.stdout.write(
  `RESULT address=${lease.address}/${lease.prefix} gateway=${lease.gateway} dns=${lease.dnsServers.join(',')} lease=${lease.leaseTime} bound_ms=${boundMs} lookup=${looked.address} echo=${echoed}\n`,
);
await stack.close();
process.exit(0);
