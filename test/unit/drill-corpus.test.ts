// The packetdrill corpus (../shared/packetdrill: Google's scripts, GPL-2.0, external test
// data read in place, never copied): every .pkt parses, and the tier-A scripts its README
// lists run with --target stack. The pass count is tapstack's Linux-conformance figure: the
// test fails if it falls below the figure recorded here (raise it deliberately when a change
// makes more pass), and prints each failure's first differing line, next to what Google's
// packetdrill reported on Linux (LINUX-RESULTS.tsv). Skipped without the corpus.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseScript } from '../../src/drill/parse.ts';
import { type DrillResult, runDrillFile } from '../../src/drill/runner.ts';
import { CORPUS, corpusAvailable, linuxVerdicts, tierA } from '../helpers/packetdrill-corpus.ts';

/** Tier-A scripts passing with --target stack: raise it when more pass, never lower it silently. */
const RECORDED_PASSES = 35;

/**
 * v2.0's scripts call no defaults file: they expect the window scale (6) the tcp_rmem of
 * their time gave. A 3 MiB receive buffer gives the stack that scale (the corpus README's
 * advice); head/'s scripts configure 15 MiB through defaults.sh themselves.
 */
const V2_BASE = { receiveBufferSize: 3 << 20 };

function allScripts(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...allScripts(p));
    else if (name.endsWith('.pkt')) out.push(p);
  }
  return out;
}

const available = corpusAvailable;
// In CI the corpus must be there: a run without it would pass without checking anything.
test('the packetdrill corpus is found', () => {
  if (!available && process.env.CI) assert.unreachable(`no corpus at ${CORPUS} (set PACKETDRILL_DIR)`);
  if (!available) console.log(`  no corpus at ${CORPUS}: the corpus tests do nothing (set PACKETDRILL_DIR)`);
});

test('every .pkt of the corpus parses; constructs the runner does not model are listed', () => {
  if (!available) return console.log(`  skipped: no corpus at ${CORPUS}`);
  const files = allScripts(CORPUS);
  const failures: string[] = [];
  const unmodelled = new Map<string, number>();
  for (const file of files) {
    try {
      const script = parseScript(readFileSync(file, 'utf8'));
      const constructs = new Set<string>(script.unknown.map((u) => u.replace(/ [A-Z_0-9]+ /, ' NAME ')));
      for (const e of script.events) if (e.action.type === 'packet') for (const x of e.action.extras) constructs.add(x.split(' ')[0]!);
      for (const c of constructs) unmodelled.set(c, (unmodelled.get(c) ?? 0) + 1);
    } catch (err) {
      failures.push(`${path.relative(CORPUS, file)}: ${(err as Error).message}`);
    }
  }
  console.log(`  ${files.length - failures.length}/${files.length} scripts parse; parsed but not modelled (scripts): ${[...unmodelled].map(([c, n]) => `${c} ${n}`).join(', ')}`);
  assert.ok(files.length >= 227, `${files.length} scripts`);
  assert.equal(failures, []);
});

test(`tier-A scripts with --target stack: at least ${RECORDED_PASSES} pass`, async () => {
  if (!available) return console.log(`  skipped: no corpus at ${CORPUS}`);
  const scripts = tierA();
  assert.ok(scripts.length >= 53, `${scripts.length} tier-A scripts`);
  const linux = linuxVerdicts();
  const results: [string, DrillResult][] = [];
  for (const script of scripts) {
    const options = script.startsWith('v2.0/') ? { tcp: V2_BASE } : {};
    results.push([script, await runDrillFile(path.join(CORPUS, script), options)]);
  }
  const passed = results.filter(([, r]) => r.verdict === 'PASS').length;
  const unsupported = results.filter(([, r]) => r.verdict === 'UNSUPPORTED').length;
  const report: string[] = [];
  for (const [script, r] of results) {
    if (r.verdict === 'PASS') continue;
    const onLinux = linux.get(script) ?? 'no Linux verdict';
    if (r.verdict === 'UNSUPPORTED') report.push(`  UNSUPPORTED ${script}: ${r.construct}`);
    else report.push(`  FAIL ${script}:${r.line}: ${r.text}\n      ${r.message.split('\n')[0]}\n      Linux: ${onLinux.slice(0, 160)}`);
  }
  console.log(`  drill --target stack: ${passed}/${scripts.length} passed, ${unsupported} unsupported\n${report.join('\n')}`);
  assert.ok(passed >= RECORDED_PASSES, `${passed} passed, the recorded figure is ${RECORDED_PASSES}`);
});

test.run();
