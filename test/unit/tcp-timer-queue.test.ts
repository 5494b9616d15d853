// The TCP layer's timer queue (one heap of deadlines under one clock timer), in virtual time.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { type TimerEntry, TimerQueue } from '../../src/tcp/timers/queue.ts';

class Entry implements TimerEntry {
  timerAt = 0;
  timerIndex = -1;
  timerSeq = 0;
  constructor(
    readonly name: string,
    private readonly fired: string[],
    private readonly clock: VirtualClock,
  ) {}
  onTimer(): void {
    this.fired.push(`${this.name}@${this.clock.now()}`);
  }
}

test('fires in deadline order, ties in the order scheduled; moved and cancelled entries', () => {
  const clock = new VirtualClock();
  const q = new TimerQueue<Entry>(clock);
  const fired: string[] = [];
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => new Entry(n, fired, clock));
  q.schedule(a!, 300);
  q.schedule(b!, 100);
  q.schedule(c!, 100);
  q.schedule(d!, 50);
  q.schedule(a!, 20); // earlier
  q.schedule(d!, 500); // later
  q.cancel(c!);
  assert.is(q.size, 3);
  assert.is(clock.pending, 1, 'one clock timer for all of them');
  clock.advance(1000);
  assert.equal(fired, ['a@20', 'b@100', 'd@500']);
  assert.is(q.size, 0);
  assert.is(c!.timerIndex, -1);
});

test('an entry queued while the queue runs waits for the next clock timer, even when due', () => {
  const clock = new VirtualClock();
  let clockTimers = 0;
  const setTimer = clock.setTimer.bind(clock);
  clock.setTimer = (ms, fn) => {
    clockTimers++;
    return setTimer(ms, fn);
  };
  const q = new TimerQueue<TimerEntry>(clock);
  let runs = 0;
  const again: TimerEntry = {
    timerAt: 0,
    timerIndex: -1,
    timerSeq: 0,
    onTimer() {
      runs++;
      if (runs < 3) q.schedule(again, clock.now());
    },
  };
  q.schedule(again, 10);
  clock.advance(10);
  assert.is(runs, 3);
  assert.is(clockTimers, 3, 'each run after a clock timer of its own');
  assert.is(clock.now(), 10);
  assert.is(q.size, 0);
  assert.is(clock.pending, 0);
});

test('stop: nothing fires any more', () => {
  const clock = new VirtualClock();
  const q = new TimerQueue<Entry>(clock);
  const fired: string[] = [];
  q.schedule(new Entry('a', fired, clock), 10);
  q.stop();
  clock.advance(100);
  assert.equal(fired, []);
});

test('property: the same firing order as one clock timer per entry', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('schedule' as const), entry: fc.nat(7), delay: fc.nat(200) }),
    fc.record({ kind: fc.constant('cancel' as const), entry: fc.nat(7) }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(100) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const clock = new VirtualClock();
      const q = new TimerQueue<Entry>(clock);
      const fired: string[] = [];
      const entries = Array.from({ length: 8 }, (_, i) => new Entry(String(i), fired, clock));
      // The model: each entry's deadline; due entries fire by deadline, then by schedule order.
      const model = new Map<number, { at: number; order: number }>();
      const expected: string[] = [];
      let order = 0;
      for (const o of ops) {
        if (o.kind === 'schedule') {
          q.schedule(entries[o.entry]!, clock.now() + o.delay);
          model.set(o.entry, { at: clock.now() + o.delay, order: order++ });
        } else if (o.kind === 'cancel') {
          q.cancel(entries[o.entry]!);
          model.delete(o.entry);
        } else {
          const until = clock.now() + o.ms;
          const due = [...model].filter(([, v]) => v.at <= until).sort(([, x], [, y]) => x.at - y.at || x.order - y.order);
          for (const [i, v] of due) {
            expected.push(`${i}@${v.at}`);
            model.delete(i);
          }
          clock.advance(o.ms);
        }
      }
      assert.equal(fired, expected);
      assert.is(q.size, model.size);
    }),
  );
});

test.run();
