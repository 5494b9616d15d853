// createStack's failure paths leave nothing open behind them.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createStack } from '../../src/stack.ts';

const openFds = (): number => readdirSync('/proc/self/fd').length;

test('a TAP that cannot be opened does not leave the pcap file open (regression)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tapstack-create-'));
  try {
    const before = openFds();
    let error: unknown = null;
    await createStack({ tap: 'not a valid name!', ip: '10.0.0.2/24', pcap: path.join(dir, 'x.pcap') }).catch((e: unknown) => (error = e));
    assert.ok(error instanceof Error && /invalid TAP device name/.test(error.message), String(error));
    assert.is(openFds(), before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
