// The worker reader of TAP frames (src/tap/ring.ts) over a FIFO instead of a TAP (no root, no
// device): a read of a FIFO, like one of a TAP, returns what one write put in when the reader
// keeps up, and blocks when there is nothing. Also --tap-io on both command lines.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseArgs, UsageError } from '../../src/cli.ts';
import { parseFleetArgs } from '../../src/fleet/fleet-cli.ts';
import { RingReader, type RingWake } from '../../src/tap/ring.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function fifo(): { dir: string; readFd: number; writeFd: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tap-ring-'));
  const p = path.join(dir, 'frames');
  execFileSync('mkfifo', [p]);
  // O_RDWR: open(2) of a FIFO does not wait for the other end (fifo(7)); reads still block.
  const readFd = fs.openSync(p, fs.constants.O_RDWR);
  const writeFd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  return { dir, readFd, writeFd };
}

for (const wake of ['worker-ring', 'worker-loop', 'worker-yield', 'worker-spin'] as RingWake[]) {
  test(`${wake}: frames in order, a batch end after each batch, past a full ring; close wakes the blocked reader`, async () => {
    const { dir, readFd, writeFd } = fifo();
    const got: number[] = [];
    let batchEnds = 0;
    const ring = new RingReader({
      fd: readFd,
      slotSize: 256,
      slots: 4,
      wake,
      rxBatch: 3,
      deliver: (buf, len) => {
        assert.is(len, 100);
        got.push(buf[0]!);
      },
      batchEnd: () => batchEnds++,
      onReadError: () => assert.unreachable('read error'),
    });
    try {
      const frame = Buffer.alloc(100);
      for (let i = 0; i < 20; i++) {
        frame[0] = i;
        fs.writeSync(writeFd, frame);
        // One frame per read: let the reader take each before the next write (a FIFO,
        // unlike a TAP, would hand two writes to one read).
        const until = Date.now() + 2000;
        while (got.length <= i && Date.now() < until) await sleep(1);
      }
      assert.equal(got, [...Array(20).keys()]);
      assert.ok(batchEnds >= 7, `batch ends: ${batchEnds}`);
      await sleep(20); // the reader is back in read(2), blocked
    } finally {
      const t0 = Date.now();
      await ring.close();
      assert.ok(Date.now() - t0 < 1000, 'close took too long');
      fs.closeSync(readFd);
      fs.closeSync(writeFd);
      fs.rmSync(dir, { recursive: true });
    }
  });
}

test('close right after start, before the reader has its thread id', async () => {
  const { dir, readFd, writeFd } = fifo();
  const ring = new RingReader({ fd: readFd, slotSize: 64, slots: 2, wake: 'worker-loop', rxBatch: 64, deliver: () => {}, batchEnd: () => {}, onReadError: () => {} });
  await ring.close();
  fs.closeSync(readFd);
  fs.closeSync(writeFd);
  fs.rmSync(dir, { recursive: true });
});

test('--tap-io on tapstack and tapstack fleet; an unknown mode refused', () => {
  const o = parseArgs(['--tap-io', 'worker-loop']);
  if (o === 'help') throw new Error('help');
  assert.is(o.tapIo, 'worker-loop');
  const d = parseArgs([]);
  if (d === 'help') throw new Error('help');
  assert.is(d.tapIo, 'stream');
  assert.throws(() => parseArgs(['--tap-io', 'fast']), (e: unknown) => e instanceof UsageError && /--tap-io: expected one of stream, busy-poll/.test((e as Error).message));
  const f = parseFleetArgs(['--count', '2', '--ip', '10.0.0.10/24', '--tap-io=worker-ring']);
  if (f === 'help') throw new Error('help');
  assert.is(f.tapIo, 'worker-ring');
});

test.run();
