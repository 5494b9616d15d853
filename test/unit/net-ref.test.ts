// ref/unref hold Node's event loop as Node's sockets do (issue 11 item 1): a process whose
// stack sockets and servers are all unref'd exits; a ref'd one keeps it alive. The same
// fixture on Node's own net (in a namespace of its own, with root) gives the same outcome.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT, withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';

const FIXTURE = path.join(ROOT, 'test/fixtures/net-ref.ts');
const TSX = `file://${ROOT}/node_modules/tsx/dist/loader.mjs`;
const MODES = ['unref', 'ref', 'unref-then-ref'];
const EXPECTED: Record<string, string> = { unref: 'exited 0', ref: 'alive', 'unref-then-ref': 'alive' };

/** Runs the fixture on tapstack: 'exited N', or 'alive' if it still runs after waitMs (then ended by PID). */
function onTapstack(mode: string, waitMs: number): Promise<{ result: string; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', TSX, FIXTURE, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ result: 'alive', out });
    }, waitMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ result: `exited ${code}`, out });
    });
  });
}

test('tapstack: only unref\'d sockets and servers let the process exit; a ref\'d one keeps it', async () => {
  for (const mode of MODES) {
    const { result, out } = await onTapstack(mode, mode === 'unref' ? 8000 : 4000);
    assert.is(result, EXPECTED[mode], `${mode}: ${out}`);
    assert.match(out, 'connected');
  }
});

test('tapstack: an orphan still sending holds the loop until its data is delivered', async () => {
  const { result, out } = await onTapstack('orphan', 8000);
  assert.is(result, 'exited 0', out);
  assert.match(out, 'received 300000');
});

(canUseTap ? test : test.skip)('Node\'s own net gives the same outcomes (the reference)', async () => {
  await withNamespace(async (ns) => {
    for (const mode of MODES) {
      const r = await ns.exec(process.execPath, ['--import', TSX, FIXTURE, mode, 'node'], 4000);
      const result = r.code === null ? 'alive' : `exited ${r.code}`;
      assert.is(result, EXPECTED[mode], `${mode}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, 'connected');
    }
  }, 'netref');
});

test.run();
