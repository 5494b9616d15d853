// `tapstack fuzz --target kernel|both`: cases run on the host's Linux through a TAP in a
// namespace made per case (and deleted after), in real time; `both` runs each case on
// tapstack as well and compares the replies. A few runs: enough to see the whole path work
// (the opening's handshake, the oracle, the summary, the namespaces gone).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runDrillFile } from '../../src/drill/runner.ts';
import { runFuzzCli } from '../../src/fuzz/fuzz-cli.ts';
import { canUseTap } from '../helpers/root.ts';

const it = canUseTap ? test : test.skip;

function namespacesLeft(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.includes(`tapstack-fuzz-${process.pid}-`));
}

it('--target kernel: cases run on Linux, the summary line, no namespace left', async () => {
  let out = '';
  const code = await runFuzzCli(['--target', 'kernel', '--seed', '2', '--runs', '4', '--steps', '6'], (s) => (out += s));
  assert.ok(code === 0 || code === 1, out);
  assert.match(out, /^fuzz: 4 runs, \d+ failures, \d+ transitions$/m);
  const transitions = Number(/(\d+) transitions$/m.exec(out)![1]);
  assert.ok(transitions >= 5, `${transitions} transitions reached on the kernel`);
  assert.equal(namespacesLeft(), []);
});

it('--target both: the differential oracle runs each case on tapstack and Linux; findings are written as scripts', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fuzz-both-'));
  try {
    let out = '';
    const code = await runFuzzCli(['--target', 'both', '--seed', '1', '--runs', '3', '--steps', '6', '--out', dir], (s) => (out += s));
    assert.ok(code === 0 || code === 1, out);
    assert.match(out, /^fuzz: 3 runs, \d+ failures, \d+ transitions$/m);
    // Every finding is a script the drill parses and runs (on tapstack: a difference may pass there).
    for (const f of readdirSync(dir)) {
      const text = readFileSync(path.join(dir, f), 'utf8');
      assert.match(text, /Rule: /);
      const r = await runDrillFile(path.join(dir, f));
      assert.ok(r.verdict !== 'UNSUPPORTED', `${f}: ${JSON.stringify(r)}`);
    }
    console.log(`  both: ${out.split('\n').filter((l) => l.startsWith('FAIL')).join('\n  ') || 'no differences'}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(namespacesLeft(), []);
});

test.run();
