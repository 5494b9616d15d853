// The worker reader of a TAP (TapOptions.io 'worker-ring', 'worker-loop', 'worker-yield'):
// a worker_thread blocks in read(2) on the TAP's descriptor, opened blocking, and puts each
// frame into a slot of a SharedArrayBuffer ring; the stack's thread takes the frames from the
// ring. The point (issue 15): a frame reaches the stack without an epoll wake-up and a libuv
// callback of its own thread; the main thread waits on the ring with Atomics instead.
//
// Writes go on from the main thread through the same descriptor: a TAP write never waits even
// on a blocking descriptor (tun_chr_open sets sk_sndbuf to INT_MAX, so sock_alloc_send_pskb
// never sleeps, and the frame is handed to netif_rx at once).
//
// Waking the main thread:
//   worker-ring   Atomics.waitAsync, one promise each time the ring was found empty
//   worker-loop   after a frame, Atomics.wait in place for the next one, for up to a slice
//                 (LOOP_SLICE_MS) of frames, then back to the event loop: setImmediate while
//                 frames still come, else waitAsync. Timers and I/O wait up to a slice.
//   worker-yield  after each batch, back to the event loop (ticks and promises run); the wait
//                 for the next frame is an Atomics.wait in a setImmediate, up to LOOP_SLICE_MS.
//   worker-spin   after each batch, a look at the ring on every turn of the event loop
//                 (setImmediate) for up to SPIN_US, then waitAsync: no futex sleep and wake-up
//                 of the main thread while frames follow each other closely.
// With no traffic both threads sleep: the worker in read(2), the main thread in libuv's epoll
// (the waitAsync's wake-up comes through a uv_async handle).
//
// Close: a thread blocked on a (non-multi-queue) TAP wakes only for a frame, a signal or the
// device's removal, and Node joins its workers at exit, so a blocked reader would hang the
// process. The reader's thread is sent a signal whose handler does nothing and lacks
// SA_RESTART (ffi.ts installWakeSignal): read(2) fails with EINTR, the reader sees STOP.

import { Worker } from 'node:worker_threads';
import { installWakeSignal, signalThread } from './ffi.ts';

export type RingWake = 'worker-ring' | 'worker-loop' | 'worker-yield' | 'worker-spin';

// Control words (Int32) at the start of the control buffer; frame lengths follow.
const HEAD = 0; // frames the reader has put in (wraps at 2^32)
const TAIL = 1; // frames the stack has taken
const STOP = 2; // set by the main thread: the reader leaves its loop
const TID = 3; // the reader's thread id (for tgkill)
const FULL = 4; // the reader waits for room
const READ_ERRORS = 5;
const STOPPED = 6; // set by the reader when it has left its loop
const CONTROL_WORDS = 16;

/** Longest the main thread stays in Atomics.wait: timers and other I/O are late by up to this. */
export const LOOP_SLICE_MS = 1;
/** worker-spin: how long the main thread keeps looking at the ring after a batch. */
const SPIN_US = 50;

// The reader: plain CommonJS, run with no loader (execArgv []), so it starts in ~20 ms.
const READER_SOURCE = `
const fs = require('node:fs');
const { workerData } = require('node:worker_threads');
const { ring, control, fd, slots, slotSize } = workerData;
const ctl = new Int32Array(control, 0, ${CONTROL_WORDS});
const lens = new Int32Array(control, ${CONTROL_WORDS * 4}, slots);
const views = [];
for (let i = 0; i < slots; i++) views.push(new Uint8Array(ring, i * slotSize, slotSize));
Atomics.store(ctl, ${TID}, Number(fs.readlinkSync('/proc/thread-self').split('/').pop()));
Atomics.notify(ctl, ${TID});
const mask = slots - 1;
let head = 0;
Error.stackTraceLimit = 0;
while (Atomics.load(ctl, ${STOP}) === 0) {
  const tail = Atomics.load(ctl, ${TAIL});
  if (((head - tail) | 0) >= slots) {
    Atomics.store(ctl, ${FULL}, 1);
    Atomics.wait(ctl, ${TAIL}, tail, 100);
    Atomics.store(ctl, ${FULL}, 0);
    continue;
  }
  let n;
  try {
    n = fs.readSync(fd, views[head & mask], 0, slotSize, null);
  } catch (err) {
    if (err.code === 'EINTR' || err.code === 'EAGAIN') continue;
    Atomics.add(ctl, ${READ_ERRORS}, 1);
    Atomics.wait(ctl, ${STOP}, 0, 10); // a device gone: no spinning on its errors
    continue;
  }
  lens[head & mask] = n;
  head = (head + 1) | 0;
  Atomics.store(ctl, ${HEAD}, head);
  Atomics.notify(ctl, ${HEAD});
}
Atomics.store(ctl, ${STOPPED}, 1);
`;

/** Atomics.waitAsync (ES2024; in Node since 16), absent from this project's lib setting. */
interface AtomicsWaitAsync {
  waitAsync(array: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}

export interface RingReaderOptions {
  fd: number;
  slotSize: number;
  /** A power of two. */
  slots: number;
  wake: RingWake;
  /** Frames handed over before a batch end at most. */
  rxBatch: number;
  deliver: (buf: Buffer, len: number) => void;
  batchEnd: () => void;
  onReadError: () => void;
}

export class RingReader {
  private readonly ctl: Int32Array;
  private readonly lens: Int32Array;
  private readonly slotBuffers: Buffer[] = [];
  private readonly worker: Worker;
  private readonly mask: number;
  private readonly wakeSignal: number;
  private tail = 0;
  private spinUntil = 0;
  private readonly onSpin = (): void => this.spin();
  private closed = false;
  private readErrorsSeen = 0;
  private readonly exited: Promise<void>;
  private readonly onWake = (): void => this.woken();
  private readonly onLoop = (): void => this.loop();
  private readonly onProcessExit = (): void => this.stopNow();

  constructor(private readonly o: RingReaderOptions) {
    this.wakeSignal = installWakeSignal();
    if (this.wakeSignal < 0) throw new Error('no free real-time signal to wake the TAP reader with');
    const ring = new SharedArrayBuffer(o.slots * o.slotSize);
    const control = new SharedArrayBuffer((CONTROL_WORDS + o.slots) * 4);
    this.ctl = new Int32Array(control, 0, CONTROL_WORDS);
    this.lens = new Int32Array(control, CONTROL_WORDS * 4, o.slots);
    for (let i = 0; i < o.slots; i++) this.slotBuffers.push(Buffer.from(ring, i * o.slotSize, o.slotSize));
    this.mask = o.slots - 1;
    this.worker = new Worker(READER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { ring, control, fd: o.fd, slots: o.slots, slotSize: o.slotSize },
      stdout: false,
      stderr: false,
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    // Node joins workers at exit: one blocked in read(2) must be woken first (see above).
    process.on('exit', this.onProcessExit);
    this.arm();
  }

  ref(): void {
    this.worker.ref();
  }

  unref(): void {
    this.worker.unref();
  }

  /** Waits without blocking for the reader to put in a frame (a uv_async wake-up). */
  private arm(): void {
    if (this.closed) return;
    const r = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.ctl, HEAD, this.tail);
    if (r.async) void r.value.then(this.onWake);
    else setImmediate(this.onWake); // frames already there: take them on the next turn
  }

  private woken(): void {
    if (this.closed) return;
    this.drain();
    if (this.o.wake === 'worker-ring') this.arm();
    else if (this.o.wake === 'worker-yield') setImmediate(this.onLoop);
    else if (this.o.wake === 'worker-spin') {
      this.spinUntil = performance.now() + SPIN_US / 1000;
      setImmediate(this.onSpin);
    } else this.loop();
  }

  /** worker-spin: one look at the ring per event-loop turn, until SPIN_US without a frame. */
  private spin(): void {
    if (this.closed) return;
    if (Atomics.load(this.ctl, HEAD) !== this.tail) {
      this.drain();
      this.spinUntil = performance.now() + SPIN_US / 1000;
    } else if (performance.now() > this.spinUntil) {
      this.arm();
      return;
    }
    setImmediate(this.onSpin);
  }

  /**
   * worker-loop: frames as they come, waiting in place, until a slice has passed; worker-yield:
   * one wait, then back to the event loop. A slice that brought nothing ends the loop (waitAsync).
   */
  private loop(): void {
    if (this.closed) return;
    const start = performance.now();
    let took = false;
    for (;;) {
      const left = LOOP_SLICE_MS - (performance.now() - start);
      if (left <= 0) break;
      if (Atomics.wait(this.ctl, HEAD, this.tail, left) === 'timed-out') break;
      this.drain();
      took = true;
      if (this.o.wake === 'worker-yield' || this.closed) break;
    }
    if (took) setImmediate(this.onLoop);
    else this.arm();
  }

  /** Hands over what the ring holds, in batches of at most rxBatch, each with its batch end. */
  private drain(): void {
    const ctl = this.ctl;
    let tail = this.tail;
    let head = Atomics.load(ctl, HEAD);
    while (tail !== head && !this.closed) {
      let n = 0;
      while (tail !== head && n < this.o.rxBatch && !this.closed) {
        const slot = tail & this.mask;
        this.o.deliver(this.slotBuffers[slot]!, this.lens[slot]!);
        tail = (tail + 1) | 0;
        n++;
      }
      this.tail = tail;
      Atomics.store(ctl, TAIL, tail);
      if (Atomics.load(ctl, FULL) !== 0) Atomics.notify(ctl, TAIL);
      this.o.batchEnd();
      head = Atomics.load(ctl, HEAD);
    }
    const errors = Atomics.load(ctl, READ_ERRORS);
    while (this.readErrorsSeen !== errors) {
      this.readErrorsSeen++;
      this.o.onReadError();
    }
  }

  /** Wakes the reader out of read(2) until it has left its loop (bounded: 2 s). */
  private stopNow(): void {
    Atomics.store(this.ctl, STOP, 1);
    Atomics.notify(this.ctl, TAIL);
    const tid = Atomics.load(this.ctl, TID);
    for (let i = 0; i < 400 && Atomics.load(this.ctl, STOPPED) === 0; i++) {
      if (tid !== 0) signalThread(tid, this.wakeSignal);
      Atomics.wait(this.ctl, STOPPED, 0, 5);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    process.off('exit', this.onProcessExit);
    // The reader may still be starting (no thread id yet): wait for it, bounded.
    for (let i = 0; i < 200 && Atomics.load(this.ctl, TID) === 0; i++) await new Promise((r) => setTimeout(r, 5));
    this.stopNow();
    if (Atomics.load(this.ctl, STOPPED) === 0) await this.worker.terminate();
    await this.exited;
    // A pending waitAsync would resolve on its timeout only (none): resolve it now.
    Atomics.notify(this.ctl, HEAD);
  }
}
