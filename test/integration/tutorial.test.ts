// docs/tutorial.md, run as written: every ```sh block, in order, as one bash script (so a
// variable set in one block, such as the stack's PID, is there in the next). The tutorial
// works in a namespace called `lesson` and a directory /tmp/lesson; here both get a unique
// name so that a reader's own lesson is never touched, and the script's exit trap ends the
// processes it started (by PID: bash's `jobs -p`) and deletes the namespace whatever happens.
// A command that fails (set -e: a grep that finds nothing included) fails the test with the
// block it was in. Not pipefail: a reader's shell has none, and `... | head` is meant to
// cut a long output short.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canUseTap } from '../helpers/root.ts';
import { ROOT, run } from '../helpers/netns.ts';

const it = canUseTap ? test : test.skip;
const TUTORIAL = path.join(ROOT, 'docs/tutorial.md');

export interface TutorialBlock {
  /** 1-based line of the opening fence. */
  line: number;
  /** The section heading the block is under. */
  section: string;
  code: string;
}

/** The ```sh blocks of a Markdown text, in order (other fences are shown, not run). */
export function shellBlocks(markdown: string): TutorialBlock[] {
  const blocks: TutorialBlock[] = [];
  const lines = markdown.split('\n');
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^#{1,6} /.test(l)) section = l.replace(/^#+ /, '');
    const fence = /^```(\S*)\s*$/.exec(l);
    if (!fence) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    if (fence[1] === 'sh') blocks.push({ line: start + 1, section, code: body.join('\n') });
  }
  return blocks;
}

/** The whole tutorial as one script, with the namespace and directory renamed. */
export function tutorialScript(blocks: readonly TutorialBlock[], namespace: string, dir: string): string {
  const rename = (code: string): string => code.replaceAll('/tmp/lesson', dir).replace(/\blesson\b/g, namespace);
  const parts = [
    'set -eu',
    // Ends what the script started (its own background jobs, by PID) and the namespace.
    `cleanup() { for p in $(jobs -p); do kill -INT "$p" 2>/dev/null || true; done; sleep 0.5; for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null || true; done; ip netns del ${namespace} 2>/dev/null || true; }`,
    'trap cleanup EXIT',
  ];
  for (const b of blocks) {
    parts.push(`echo "::block docs/tutorial.md:${b.line} (${b.section.replace(/["`$\\]/g, '')})" >&2`);
    parts.push(rename(b.code));
  }
  return parts.join('\n') + '\n';
}

it('every command of docs/tutorial.md runs, in a namespace of its own', async () => {
  const blocks = shellBlocks(readFileSync(TUTORIAL, 'utf8'));
  assert.ok(blocks.length >= 8, `the tutorial has its commands in sh blocks (found ${blocks.length})`);
  const namespace = `lesson-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'tapstack-lesson-'));
  try {
    const script = tutorialScript(blocks, namespace, dir);
    const r = await run('bash', ['-c', `cd ${JSON.stringify(ROOT)} && bash -s`], 240_000, script);
    // TUTORIAL_OUTPUT=FILE keeps what the commands printed, to check the tutorial's words against.
    if (process.env.TUTORIAL_OUTPUT) writeFileSync(process.env.TUTORIAL_OUTPUT, r.stdout + '\n--- stderr ---\n' + r.stderr);
    const lastBlock = r.stderr.split('\n').filter((l) => l.startsWith('::block ')).pop() ?? '(none)';
    assert.is(r.code, 0, `the tutorial failed in ${lastBlock.slice(8)}:\n${r.stderr.slice(-3000)}\n--- stdout ---\n${r.stdout.slice(-2000)}`);
  } finally {
    await run('ip', ['netns', 'del', namespace]);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Commands that touch a network: in the tutorial they run only inside its namespace. */
const NETWORK_COMMAND = /\b(?:ping|arping|curl|nc|socat|nft|ethtool|tc|sysctl|chromium|python3|hping3|ip (?:link|addr|address|route|neigh|tuntap))\b|bin\/tapstack(?! (?:plot|show) )/;

it('the tutorial keeps to its namespace: every networked command runs inside `lesson`', () => {
  // The test renames `lesson` and /tmp/lesson; any other namespace, or a command outside it,
  // would reach the reader's or the test machine's own network.
  for (const b of shellBlocks(readFileSync(TUTORIAL, 'utf8'))) {
    for (const m of b.code.matchAll(/ip netns (?:add|del|exec) (\S+)/g)) assert.is(m[1], 'lesson', `docs/tutorial.md:${b.line}`);
    for (const line of b.code.split('\n')) {
      const command = line.replace(/#.*$/, '');
      const m = NETWORK_COMMAND.exec(command);
      if (!m) continue;
      const before = command.slice(0, m.index);
      assert.match(before, /ip netns exec lesson /, `docs/tutorial.md:${b.line}: '${line.trim()}' runs outside the namespace`);
    }
  }
});

test.run();
