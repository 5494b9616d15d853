// --trace [FILTER], --trace-format and --trace-file (parseArgs only).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseArgs, UsageError } from '../../src/cli.ts';

function parse(argv: string[]) {
  const o = parseArgs(argv);
  if (o === 'help') throw new Error('help');
  return o;
}

test('no --trace: no trace', () => {
  assert.is(parse([]).trace, null);
});

test('--trace takes the next argument as its filter unless it is an option', () => {
  assert.is(parse(['--trace']).trace, '');
  assert.is(parse(['--trace', 'tcp port 7']).trace, 'tcp port 7');
  assert.is(parse(['--trace', '--stats-on-exit']).trace, '');
  assert.is(parse(['--trace', '--stats-on-exit']).statsOnExit, true);
  assert.is(parse(['--trace=host 10.0.0.1 and not arp']).trace, 'host 10.0.0.1 and not arp');
});

test('--trace-format and --trace-file (each implies --trace)', () => {
  const o = parse(['--trace-format', 'json', '--trace-file', '/tmp/t.jsonl']);
  assert.is(o.trace, '');
  assert.is(o.traceFormat, 'json');
  assert.is(o.traceFile, '/tmp/t.jsonl');
  assert.is(parse(['--trace', 'udp']).traceFormat, 'text');
  assert.is(parse(['--trace', 'udp', '--trace-format=json']).trace, 'udp');
});

test('a bad filter or format is a UsageError that says what is wrong', () => {
  const cases: [string[], RegExp][] = [
    [['--trace', 'tcp port'], /--trace: .*expected a port number/],
    [['--trace', 'host 10.0.0'], /--trace: .*IPv4 address/],
    [['--trace', 'bogus'], /--trace: .*unknown primitive "bogus"/],
    [['--trace-format', 'xml'], /--trace-format: expected text or json/],
    [['--trace-file'], /--trace-file needs a value/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(() => parseArgs(argv), (e: unknown) => e instanceof UsageError && message.test((e as Error).message), argv.join(' '));
  }
});

test.run();
