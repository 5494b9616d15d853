// ref/unref hold Node's event loop as Node's sockets do (issue 11 item 1): a process whose
// stack sockets and servers are all unref'd exits; a ref'd one keeps it alive.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from '../helpers/netns.ts';

const FIXTURE = path.join(ROOT, 'test/fixtures/net-ref.ts');
const TSX = `file://${ROOT}/node_modules/tsx/dist/loader.mjs`;

/** Runs the fixture; the exit code, or 'alive' if it still runs after waitMs (then ended by PID). */
function runFixture(mode: string, waitMs: number): Promise<{ result: number | 'alive'; out: string }> {
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
      resolve({ result: code ?? -1, out });
    });
  });
}

test('only unref\'d sockets and servers: the process exits by itself', async () => {
  const { result, out } = await runFixture('unref', 8000);
  assert.is(result, 0, out);
  assert.match(out, 'connected');
});

test('a ref\'d socket keeps it alive (also ref() again after unref())', async () => {
  for (const mode of ['ref', 'unref-then-ref']) {
    const { result, out } = await runFixture(mode, 4000);
    assert.is(result, 'alive', `${mode}: ${out}`);
    assert.match(out, 'connected');
  }
});

test.run();
