// The README's "Crafting frames" example, run as it is written (its imports pointed at src/),
// prints what the README says it prints.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('the Crafting frames example prints what the README shows', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split('\n## ').find((s) => s.startsWith('Crafting frames'))!;
  const program = /```js\n([\s\S]*?)```/.exec(section)![1]!;
  const printed = /\nprints\n\n((?: {4}.*\n)+)/.exec(section)![1]!.replace(/^ {4}/gm, '');
  const src = (p: string): string => pathToFileURL(path.join(ROOT, p)).href;
  const local = program.replace("from 'tapstack/craft'", `from '${src('src/craft/index.ts')}'`).replace("from 'tapstack'", `from '${src('src/index.ts')}'`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'readme-craft-'));
  try {
    writeFileSync(path.join(tmp, 'main.mjs'), local);
    const r = spawnSync(process.execPath, ['--import', src('node_modules/tsx/dist/loader.mjs'), path.join(tmp, 'main.mjs')], { encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, printed);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
