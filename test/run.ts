// Runs every test file (test/**/*.test.ts), each in its own Node process with uvu, and ends
// with one line: `N passed, N failed, N skipped`. A file that crashes before uvu's summary
// counts as one failure. Files run one at a time: integration tests share the machine.
//
//   npm test                 every test
//   npm test -- unit tcp     only files whose path contains "unit" or "tcp"

import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const loader = `file://${root}/node_modules/tsx/dist/loader.mjs`;
const fcSetup = `file://${root}/test/helpers/fc-setup.ts`;
const FILE_TIMEOUT_MS = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 20 * 60_000);

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

interface FileResult {
  passed: number;
  failed: number;
  skipped: number;
}

function runFile(file: string): Promise<FileResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', loader, '--import', fcSetup, file], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d);
    });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    const timer = setTimeout(() => {
      process.stdout.write(`\n[run] ${file}: timed out after ${FILE_TIMEOUT_MS} ms, killing\n`);
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      const num = (label: string): number | null => {
        const m = new RegExp(`${label}:\\s+(\\d+)`).exec(out);
        return m ? Number(m[1]) : null;
      };
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped') ?? 0;
      if (total === null || passed === null) {
        process.stdout.write(`[run] ${file}: no summary (exit ${code}), counted as 1 failure\n`);
        return resolve({ passed: 0, failed: 1, skipped: 0 });
      }
      // uvu's Total counts the tests that ran; skipped ones are apart.
      let failed = Math.max(0, total - passed);
      if (failed === 0 && code !== 0) failed = 1; // an error after the summary (an unhandled rejection)
      resolve({ passed, failed, skipped });
    });
  });
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const files = findTests(path.join(root, 'test')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
  const sum: FileResult = { passed: 0, failed: 0, skipped: 0 };
  const failedFiles: string[] = [];
  for (const file of files) {
    process.stdout.write(`\n=== ${path.relative(root, file)}\n`);
    const r = await runFile(file);
    sum.passed += r.passed;
    sum.failed += r.failed;
    sum.skipped += r.skipped;
    if (r.failed > 0) failedFiles.push(path.relative(root, file));
  }
  if (failedFiles.length > 0) process.stdout.write(`\nfailed files: ${failedFiles.join(', ')}\n`);
  process.stdout.write(`\n${sum.passed} passed, ${sum.failed} failed, ${sum.skipped} skipped\n`);
  process.exit(sum.failed > 0 ? 1 : 0);
}

void main();
