// npm run bench:fleet [-- COUNT]: start-up time and resident memory per device of a fleet
// (createFleet, static addresses, the echo service) on an in-memory link: the process's RSS
// after a GC, minus the RSS before the fleet, divided by the count; and the JS heap per
// device. Run a few times: RSS moves with what else the machine runs.
import { createFleet } from '../src/fleet/fleet.ts';
import { createLinkPair } from '../src/link/memory.ts';
import { RealClock } from '../src/util/clock.ts';
const n = Number(process.argv[2] ?? 1000);
(globalThis as any).gc?.();
const base = process.memoryUsage().rss;
const clock = new RealClock();
const [, link] = createLinkPair(clock);
const t0 = performance.now();
const fleet = await createFleet({ count: n, link, clock, ip: '10.0.1.1/16', services: ['echo'], seed: 1 });
const t1 = performance.now();
await new Promise((r) => setTimeout(r, 500));
(globalThis as any).gc?.();
const rss = process.memoryUsage().rss;
console.log(`devices ${n} start ${(t1 - t0).toFixed(0)} ms rss/device ${((rss - base) / n / 1024).toFixed(1)} KiB heap ${(process.memoryUsage().heapUsed / n / 1024).toFixed(1)} KiB/device`);
await fleet.close();
process.exit(0);
