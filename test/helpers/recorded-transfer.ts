// A trace of the real stack: two stacks in virtual time, A sends `bytes` to B's port 7 through
// netem with loss (seeded, so the same frames every run), A traced with stack.trace().
import type { TraceRecord } from '../../src/trace/schema.ts';
import { stackPair } from './tcp-pair.ts';

export interface RecordedTransfer {
  records: TraceRecord[];
  /** A's connection id. */
  conn: string;
}

export async function recordLossyTransfer(options: { seed: number; bytes: number; loss: number; delayMs?: number }): Promise<RecordedTransfer> {
  const delayMs = options.delayMs ?? 10;
  // A 10 Mbit/s bottleneck spreads each flight over time, as a real path does.
  const { clock, a, b } = await stackPair({
    netem: { seed: options.seed, a: { loss: options.loss, delayMs, rateBps: 10_000_000 }, b: { delayMs } },
  });
  const records: TraceRecord[] = [];
  const trace = a.trace({ format: 'json', output: null, onRecord: (r) => records.push(r) });
  const server = b.createServer((s) => {
    s.resume();
    s.on('end', () => s.end());
  });
  server.listen(7);
  const client = a.connect(7, '10.0.0.2');
  let closed = false;
  client.on('error', () => {});
  client.on('close', () => (closed = true));
  client.resume();
  client.end(Buffer.alloc(options.bytes, 7));
  // Bounded: 60 s of virtual time at most.
  for (let ms = 0; ms < 60_000 && !closed; ms++) {
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
  }
  trace.stop();
  server.close();
  if (!closed) throw new Error('recordLossyTransfer: the transfer did not finish in 60 s');
  const frame = records.find((r) => r.type === 'frame' && r.tcp?.conn);
  const conn = frame?.type === 'frame' ? frame.tcp!.conn! : '';
  return { records, conn };
}
