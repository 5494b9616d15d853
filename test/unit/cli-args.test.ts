// The command line's argument parsing (no device is touched: parseArgs only).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseArgs, UsageError } from '../../src/cli.ts';

test('defaults follow the issue: tap0, 10.0.0.2/24, host 10.0.0.1/24, MTU 1500', () => {
  const o = parseArgs([]);
  assert.ok(o !== 'help');
  assert.is(o.tap, 'tap0');
  assert.is(o.ip, '10.0.0.2/24');
  assert.is(o.hostIp, '10.0.0.1/24');
  assert.is(o.mtu, 1500);
  assert.is(o.gateway, undefined);
  assert.is(o.statsOnExit, false);
});

test('values given as --flag VALUE or --flag=VALUE; a bare address gets /24', () => {
  const o = parseArgs(['--ip=192.168.5.9', '--host-ip', '192.168.5.1/24', '--mtu=9000', '--pcap', 'x.pcap', '--no-host-config', '--stats-on-exit']);
  if (o === 'help') throw new Error('help');
  assert.is(o.ip, '192.168.5.9/24');
  assert.is(o.hostIp, null);
  assert.is(o.mtu, 9000);
  assert.is(o.pcap, 'x.pcap');
  assert.is(o.statsOnExit, true);
});

test('--dhcp and --dns: no fixed address, name servers; --ip or --gateway with --dhcp refused', () => {
  const o = parseArgs(['--dhcp', '--dns', '10.0.0.1,10.0.0.53']);
  if (o === 'help') throw new Error('help');
  assert.is(o.dhcp, true);
  assert.equal(o.dns, ['10.0.0.1', '10.0.0.53']);
  assert.throws(() => parseArgs(['--dhcp', '--ip', '10.0.0.5/24']), (e: Error) => e instanceof UsageError && /--ip and --dhcp/.test(e.message));
  assert.throws(() => parseArgs(['--dhcp', '--gateway', '10.0.0.1']), (e: Error) => e instanceof UsageError && /--gateway/.test(e.message));
  assert.throws(() => parseArgs(['--dns', '10.0.0']), (e: Error) => e instanceof UsageError && /--dns/.test(e.message));
  assert.throws(() => parseArgs(['--dhcp=yes']), (e: Error) => e instanceof UsageError && /--dhcp/.test(e.message));
});

test('every bad argument is a UsageError naming it', () => {
  const bad: [string[], string][] = [
    [['--ip', '1.2.3.4/40'], '--ip'],
    [['--mtu', '575'], '--mtu'],
    [['--mtu', '65536'], '--mtu'],
    [['--mac', 'ff:ff:ff:ff:ff:ff'], '--mac'],
    [['--gateway'], '--gateway'],
    [['--whatever'], '--whatever'],
    // Regression: a flag that takes no value used to accept (and ignore) one.
    [['--no-host-config=yes'], '--no-host-config'],
    [['--stats-on-exit=1'], '--stats-on-exit'],
  ];
  for (const [args, name] of bad) {
    assert.throws(() => parseArgs(args), (e: unknown) => e instanceof UsageError && e.message.includes(name), args.join(' '));
  }
});

test('--help', () => {
  assert.is(parseArgs(['--help']), 'help');
  assert.is(parseArgs(['-h']), 'help');
});

test.run();
