// What the trace costs: a bulk transfer between two stacks on an in-memory cable in virtual
// time (no root, no TAP: the CPU time is the stacks' work alone), with no trace, with a trace
// handing records to a function (what the live page does), and with a trace writing text
// lines (what --trace does, to a function that drops them, so that no terminal or file is
// measured), on the sending stack. The modes take turns within each round so that a noisy
// machine affects them alike; figures are CPU microseconds per MiB (user + system), median
// of RUNS, and each mode's ratio to the untraced run.
//
//   npm run bench:trace                 RUNS=5 BULK_MB=16
import type { Stack, TraceOptions } from '../src/index.ts';
import { createLinkPair, createStack, VirtualClock } from '../src/index.ts';

const RUNS = Number(process.env.RUNS ?? 5);
const BULK_MB = Number(process.env.BULK_MB ?? 16);

type Mode = 'none' | 'records' | 'text' | 'json';
const MODES: Mode[] = ['none', 'records', 'text', 'json'];
const TRACE: Record<Exclude<Mode, 'none'>, TraceOptions> = {
  records: { output: null, onRecord: () => {} },
  text: { format: 'text', colour: false, output: () => {} },
  json: { format: 'json', output: () => {} },
};

async function pair(): Promise<{ clock: VirtualClock; a: Stack; b: Stack }> {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock, { mtu: 1500, latencyMs: 0 });
  const a = await createStack({ link: la, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const b = await createStack({ link: lb, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  clock.advance(10);
  return { clock, a, b };
}

/** CPU µs per MiB of one bulk transfer from a to b, a traced as `mode` says. */
async function bulk(mode: Mode): Promise<{ us: number; records: number }> {
  const { clock, a, b } = await pair();
  let received = 0;
  b.createServer((s) => s.on('data', (d: Buffer) => (received += d.length))).listen(9);
  const trace = mode === 'none' ? null : a.trace(TRACE[mode]);
  const c = a.connect({ host: '10.0.0.2', port: 9 });
  const total = BULK_MB * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 1);
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      sent += chunk.length;
      if (!c.write(chunk)) return;
    }
  };
  c.on('drain', pump);
  const t0 = process.cpuUsage();
  pump();
  // Virtual time in 0.1 ms steps, the event loop turning between them; bounded.
  for (let i = 0; i < 10_000_000 && received < total; i++) {
    clock.advance(0.1);
    await new Promise<void>((r) => setImmediate(r));
  }
  if (received < total) throw new Error('transfer did not finish');
  const d = process.cpuUsage(t0);
  const records = trace?.records ?? 0;
  trace?.stop();
  c.destroy();
  await a.close();
  await b.close();
  return { us: (d.user + d.system) / BULK_MB, records };
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

await bulk('none'); // warm-up: JIT and slabs
const us: Record<Mode, number[]> = { none: [], records: [], text: [], json: [] };
let records: Record<Mode, number> = { none: 0, records: 0, text: 0, json: 0 };
for (let run = 0; run < RUNS; run++) {
  for (const mode of MODES) {
    const r = await bulk(mode);
    us[mode].push(r.us);
    records = { ...records, [mode]: r.records };
  }
}
const base = median(us.none);
console.log(`bulk ${BULK_MB} MiB between two stacks in virtual time, sender traced; median of ${RUNS} (CPU µs per MiB)`);
for (const mode of MODES) {
  const m = median(us[mode]);
  console.log(`  ${mode.padEnd(8)} ${m.toFixed(0).padStart(8)} µs/MiB  x${(m / base).toFixed(2)}  ${records[mode] ? `${records[mode]} records` : ''}`);
}
