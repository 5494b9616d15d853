// The fleet's real-time clock (src/util/clock.ts HeapClock): every timer in one heap behind
// one Node timeout. Timers fire in deadline order; cancelled ones never fire and do not pile
// up; the process may exit while only unref'd timers are pending and not while a ref'd one is.

import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HeapClock } from '../../src/util/clock.ts';
import { TimerHeap, type HeapTimer } from '../../src/util/timer-heap.ts';
import fc from 'fast-check';

test('fires in deadline order; cancelled timers do not fire; one due now runs as an immediate', async () => {
  const clock = new HeapClock();
  const fired: string[] = [];
  clock.setTimer(30, () => fired.push('c'));
  clock.setTimer(10, () => fired.push('a'));
  const cancelled = clock.setTimer(15, () => fired.push('x'));
  clock.setTimer(20, () => {
    fired.push('b');
    // Set from a callback: runs on a later turn, in its order.
    clock.setTimer(5, () => fired.push('b2'));
  });
  clock.setTimer(0, () => fired.push('now'));
  cancelled.cancel();
  assert.is(clock.pending, 3); // the immediate is not in the heap
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(fired, ['now', 'a', 'b', 'b2', 'c']);
  assert.is(clock.pending, 0);
});

test('a callback that throws: the others still run, later timers still fire, the error reaches the process', async () => {
  const clock = new HeapClock();
  const fired: string[] = [];
  const errors: unknown[] = [];
  const onUncaught = (err: unknown): void => void errors.push(err);
  const listeners = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', onUncaught);
  try {
    clock.setTimer(5, () => {
      throw new Error('boom');
    });
    clock.setTimer(5, () => fired.push('same turn'));
    clock.setTimer(30, () => fired.push('later'));
    await new Promise((r) => setTimeout(r, 70));
  } finally {
    process.off('uncaughtException', onUncaught);
    for (const l of listeners) process.on('uncaughtException', l);
  }
  assert.equal(fired, ['same turn', 'later']);
  assert.is(errors.length, 1);
  assert.is((errors[0] as Error).message, 'boom');
});

test('cancelled timers are dropped once they are most of the heap', () => {
  const clock = new HeapClock();
  const timers = Array.from({ length: 1000 }, () => clock.setTimer(60_000, () => {}));
  for (const t of timers) {
    t.unref?.();
    t.cancel();
  }
  assert.ok((clock as unknown as { heap: TimerHeap<HeapTimer> }).heap.size < 100);
  assert.is(clock.pending, 0);
});

test('the process exits with only unref\'d timers pending, not with a ref\'d one', () => {
  const run = (unref: boolean) =>
    spawnSync(
      process.execPath,
      ['--import', 'tsx', '-e', `import('./src/util/clock.ts').then(({ HeapClock }) => { const c = new HeapClock(); const t = c.setTimer(300, () => console.log('fired')); ${unref ? 't.unref();' : ''} c.setTimer(400, () => {}).unref(); })`],
      { encoding: 'utf8', timeout: 20_000 },
    );
  assert.is(run(true).stdout.trim(), '');
  assert.is(run(false).stdout.trim(), 'fired');
});

test('property: the heap pops in (deadline, order of setting) order', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.boolean()), { maxLength: 60 }), (spec) => {
      const heap = new TimerHeap<HeapTimer>();
      const all = spec.map(([at, cancelled], i) => ({ at, seq: 0, fn: () => {}, cancelled, i }));
      for (const t of all) heap.push(t);
      if (spec.length % 2 === 0) heap.compact();
      const out: number[] = [];
      for (let t = heap.peekLive(); t !== undefined; heap.pop(), t = heap.peekLive()) out.push((t as (typeof all)[number]).i);
      const expect = all.filter((t) => !t.cancelled).sort((a, b) => a.at - b.at || a.i - b.i).map((t) => t.i);
      assert.equal(out, expect);
    }),
  );
});

test.run();
