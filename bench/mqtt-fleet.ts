// npm run demo:mqtt-fleet [-- COUNT [READINGS]]: examples/mqtt-fleet.ts at full size (1,000
// devices by default) in a namespace of its own (test/helpers/mqtt-fleet-lab.ts: TAP, the
// route to the fleet via the tapstack router, dnsmasq, mosquitto, mosquitto_sub), then what
// each side saw: the example's figures, the readings the subscriber got, the distinct client
// addresses in the broker's log, the kernel's neighbours and dnsmasq's leases. Needs root.
import { runMqttFleetLab } from '../test/helpers/mqtt-fleet-lab.ts';

const count = Number(process.argv[2] ?? 1000);
const readings = Number(process.argv[3] ?? 3);
const lab = await runMqttFleetLab({ count, readings, intervalMs: 1000, deadlineS: 600, seed: 1 });
process.stdout.write(lab.stdout);
if (lab.exitCode !== 0) process.stdout.write(lab.stderr);
const addresses = new Set(lab.clients.values());
console.log(`broker: ${lab.clients.size} clients from ${addresses.size} addresses; subscriber: ${lab.messages} readings from ${lab.devicesHeard} devices (${lab.addressMismatches} with an address the broker did not see)`);
console.log(`kernel neighbours on the TAP: ${lab.kernelNeighbours.length} (${lab.kernelNeighbours.join('; ')}); dnsmasq leases: ${lab.dnsmasqLeases}`);
console.log(`kernel UDP: ${JSON.stringify(lab.kernelUdp)}`);
const ok = lab.exitCode === 0 && addresses.size === count && lab.messages === count * readings && lab.addressMismatches === 0;
console.log(ok ? 'demo ok' : 'demo FAILED');
process.exit(ok ? 0 : 1);
