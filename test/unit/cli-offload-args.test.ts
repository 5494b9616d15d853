// The command line's --offload, --chargen-bytes and --congestion (parseArgs only: no device is touched).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseArgs, UsageError } from '../../src/cli.ts';

test('--offload defaults to on, takes on or off, and nothing else', () => {
  const d = parseArgs([]);
  if (d === 'help') throw new Error('help');
  assert.is(d.offload, true);
  assert.is(d.chargenBytes, undefined);
  const off = parseArgs(['--offload', 'off']);
  if (off === 'help') throw new Error('help');
  assert.is(off.offload, false);
  const on = parseArgs(['--offload=on']);
  if (on === 'help') throw new Error('help');
  assert.is(on.offload, true);
  for (const bad of [['--offload', 'yes'], ['--offload']]) {
    assert.throws(() => parseArgs(bad), (e: unknown) => e instanceof UsageError && e.message.includes('--offload'), bad.join(' '));
  }
});

test('--chargen-bytes takes a byte count', () => {
  const o = parseArgs(['--chargen-bytes', '268435456']);
  if (o === 'help') throw new Error('help');
  assert.is(o.chargenBytes, 268435456);
  for (const bad of [['--chargen-bytes', '-1'], ['--chargen-bytes', '1e6'], ['--chargen-bytes', '99999999999999999999']]) {
    assert.throws(() => parseArgs(bad), (e: unknown) => e instanceof UsageError && e.message.includes('--chargen-bytes'), bad.join(' '));
  }
});

test('--congestion defaults to cubic, as Linux, and takes newreno or bbr', () => {
  const d = parseArgs([]);
  if (d === 'help') throw new Error('help');
  assert.is(d.congestion, 'cubic');
  for (const name of ['cubic', 'newreno', 'bbr'] as const) {
    const o = parseArgs(['--congestion', name]);
    if (o === 'help') throw new Error('help');
    assert.is(o.congestion, name);
  }
  for (const bad of [['--congestion', 'reno'], ['--congestion']]) {
    assert.throws(() => parseArgs(bad), (e: unknown) => e instanceof UsageError && e.message.includes('--congestion'), bad.join(' '));
  }
});

test.run();
