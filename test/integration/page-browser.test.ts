// The live page in a real browser: headless Chromium (Debian's chromium) started INSIDE the
// test's namespace and driven by puppeteer-core over a pipe (--remote-debugging-pipe: no
// DevTools port, nothing on any loopback), loading http://10.0.0.2/ over the stack's own TCP
// while curl downloads /bytes/N with 3% of that connection's frames dropped each way
// (nftables on the TAP, in the namespace's own ruleset). Then the same page opens the trace
// the stack recorded, from a file, with the stack gone; and the one-file page (GET /page.html)
// saved and opened from file:// opens a saved trace with no stack at all.
//
// Screenshots go to test-artifacts/ (gitignored): page-live.png during the transfer,
// page-chosen.png after a row is clicked, page-offline.png and page-offline-file.png from
// saved files.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Namespace, ROOT, type StackProcess, withNamespace } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';
import { lossyTransfer } from '../helpers/trace-records.ts';
import { lastTransition } from '../../src/teach/page/model.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const it = canUseTap && existsSync(CHROMIUM) ? test : test.skip;

/** curl's local ports: the loss rules match only these, so the page itself loads cleanly. */
const CURL_PORTS = '40000-40999';
const TRANSFER_BYTES = 3_000_000;

/** 3% of the transfer's frames dropped at random each way, on the kernel's side of the TAP. */
async function addTransferLoss(ns: Namespace, device: string): Promise<void> {
  const rules = `table netdev pageloss {
  chain to_stack { type filter hook egress device "${device}" priority 0; tcp sport ${CURL_PORTS} numgen random mod 100 < 3 counter drop; }
  chain from_stack { type filter hook ingress device "${device}" priority 0; tcp dport ${CURL_PORTS} numgen random mod 100 < 3 counter drop; }
}
`;
  const r = await ns.exec('nft', ['-f', '-'], 10_000, rules);
  if (r.code !== 0) throw new Error(`nft: ${r.stderr}`);
  // Every frame one segment, so that a drop is one segment's loss (as bench/loss.ts does).
  await ns.exec('ethtool', ['-K', device, 'tso', 'off', 'gso', 'off', 'gro', 'off']);
}

/** Chromium in the namespace: puppeteer starts this wrapper, which execs it there (same PID). */
async function launchInNamespace(ns: Namespace, tmp: string): Promise<Browser> {
  const wrapper = path.join(tmp, 'chromium-in-ns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns.name} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return puppeteer.launch({
    executablePath: wrapper,
    pipe: true,
    headless: true,
    userDataDir: path.join(tmp, 'profile'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check', '--disable-background-networking'],
    defaultViewport: { width: 1280, height: 900 },
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    timeout: 20_000,
  });
}

/** What the page shows, read from its DOM. */
function pageView(page: Page): Promise<{ rows: { conn: string; state: string; retrans: number }[]; traceLines: number; records: number; chosen: string; status: string; stateSvg: string; timeSeqSvg: string }> {
  return page.evaluate(() => {
    const rows = Array.from(document.querySelectorAll('#connections tbody tr')).map((tr) => {
      const cells = Array.from(tr.querySelectorAll('td')).map((td) => td.textContent ?? '');
      return { conn: (tr as HTMLElement).dataset.conn ?? '', state: cells[1] ?? '', retrans: Number(cells[8]) };
    });
    return {
      rows,
      traceLines: document.querySelectorAll('#trace div').length,
      records: Number(document.body.dataset.records ?? 0),
      chosen: document.body.dataset.chosen ?? '',
      status: document.getElementById('status')?.textContent ?? '',
      stateSvg: document.getElementById('chart-state')?.innerHTML ?? '',
      timeSeqSvg: document.getElementById('chart-timeseq')?.innerHTML ?? '',
    };
  });
}

/** Runs fn with Chromium in the namespace, ended before the namespace goes: closed, then killed by its PID. */
async function withBrowser(ns: Namespace, tmp: string, fn: (browser: Browser) => Promise<void>): Promise<void> {
  const browser = await launchInNamespace(ns, tmp);
  try {
    await fn(browser);
  } finally {
    const pid = browser.process()?.pid;
    await Promise.race([browser.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

/** Opens a saved trace with the page's file input; resolves once it is drawn. */
async function openSaved(page: Page, file: string): Promise<Awaited<ReturnType<typeof pageView>>> {
  const input = await page.$('#open');
  assert.ok(input);
  await (input as unknown as { uploadFile(...paths: string[]): Promise<void> }).uploadFile(file);
  const view = await until('the saved trace drawn', 10_000, () => pageView(page), (v) => v.records > 100 && v.rows.length > 0 && v.chosen !== '');
  assert.match(view.status, new RegExp(`offline \\(${path.basename(file).replace('.', '\\.')}: \\d+ records`));
  return view;
}

/** What the charts drew, by the classes charts.js gives its marks. */
function chartCounts(page: Page): Promise<{ segments: number; retransmissions: number; ackLine: boolean; litState: string; takenEdges: number; ladderArrows: number }> {
  return page.evaluate(() => ({
    segments: document.querySelectorAll('#chart-timeseq path.seg').length,
    retransmissions: document.querySelectorAll('#chart-timeseq path.seg.retransmit').length,
    ackLine: document.querySelector('#chart-timeseq path.ack-line') !== null,
    litState: document.querySelector('#chart-state g.fsm-state.current')?.getAttribute('data-state') ?? '',
    takenEdges: document.querySelectorAll('#chart-state g.fsm-edge.taken').length,
    ladderArrows: document.querySelectorAll('#chart-ladder g.ladder-arrow').length,
  }));
}

async function until<T>(what: string, timeoutMs: number, read: () => Promise<T>, check: (v: T) => boolean): Promise<T> {
  const started = Date.now();
  let v = await read();
  while (!check(v)) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 100));
    v = await read();
  }
  return v;
}

it('the live page over the stack\'s TCP shows a lossy transfer; the saved trace opens offline', async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tapstack-page-'));
  try {
    await withNamespace(async (ns) => {
      const stack = await ns.startStack(['--tap', 'tap0', '--offload', 'off']);
      await addTransferLoss(ns, 'tap0');
      await withBrowser(ns, tmp, (browser) => drive(browser, ns, stack, tmp));
    }, 'page');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

async function drive(browser: Browser, ns: Namespace, stack: StackProcess, tmp: string): Promise<void> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('http://10.0.0.2/', { waitUntil: 'load', timeout: 15_000 });
  await until('the page to go live', 10_000, () => pageView(page), (v) => v.status === 'live');
  // A connection of the viewer's that carries no request, as Chromium's preconnects (one was in
  // the table in a CI run): an uncredentialed one, which the page's own requests do not take.
  await page.evaluate(() => {
    const link = document.createElement('link');
    Object.assign(link, { rel: 'preconnect', href: '/', crossOrigin: 'anonymous' });
    document.head.appendChild(link);
  });

  // The lossy download, bounded in time; the page watched while it runs.
  const curl = ns.exec('curl', ['-sS', '-o', '/dev/null', '--local-port', CURL_PORTS, '--limit-rate', '1500k', '--max-time', '25', `http://10.0.0.2/bytes/${TRANSFER_BYTES}`], 30_000);
  const during = await until('the transfer in the table', 15_000, () => pageView(page), (v) => v.rows.some((r) => /:4\d{4}$/.test(r.conn) && r.state === 'ESTABLISHED') && v.traceLines > 100);
  await new Promise((r) => setTimeout(r, 700));
  await page.screenshot({ path: path.join(ARTIFACTS, 'page-live.png') });
  const done = await curl;
  assert.is(done.code, 0, done.stderr);
  assert.ok(during.chosen.includes(':4'), `the busiest connection is drawn: ${during.chosen}`);

  // Choose the transfer's row by clicking it.
  const conn = during.rows.find((r) => /:4\d{4}$/.test(r.conn))!.conn;
  await page.click(`#connections tbody tr[data-conn="${conn}"]`);
  const after = await until('the retransmissions in the table', 10_000, () => pageView(page), (v) => v.chosen === conn && (v.rows.find((r) => r.conn === conn)?.retrans ?? 0) > 0);
  await page.screenshot({ path: path.join(ARTIFACTS, 'page-chosen.png') });
  // The page draws only others' connections: its own are not in the table.
  assert.ok(after.rows.every((r) => /:4\d{4}$/.test(r.conn)), `only curl's connection: ${JSON.stringify(after.rows)}`);
  assert.ok(after.traceLines > 100, `${after.traceLines} trace lines`);
  // The charts (src/teach/charts.js): the time-sequence graph has segment bars, the lost ones
  // marked as retransmissions, and the ACK line; the state diagram lights the current state.
  const charts = await until('the drawn charts', 10_000, () => chartCounts(page), (c) => c.segments > 10 && c.retransmissions > 0 && c.ackLine && c.litState !== '');
  assert.match(charts.litState, /^(ESTABLISHED|FIN-WAIT-1|FIN-WAIT-2|CLOSING|TIME-WAIT|CLOSE-WAIT|LAST-ACK|CLOSED)$/);
  assert.ok(charts.takenEdges >= 1, 'the transition taken is highlighted');
  // The filter: only retransmissions, then everything again.
  await page.type('#filter', 'retransmit');
  const filtered = await until('the filtered trace', 5000, () => page.$$eval('#trace div', (ds) => ds.map((d) => d.textContent ?? '')), (ls) => ls.length > 0 && ls.every((l) => l.includes('retransmit')));
  assert.ok(filtered.length < after.traceLines);

  // The trace as the page downloads it, saved to a file.
  const jsonl = await page.evaluate(async () => (await fetch('/trace.jsonl')).text());
  const saved = path.join(tmp, 'lesson.jsonl');
  writeFileSync(saved, jsonl);
  assert.ok(jsonl.split('\n').length > 100);

  // Offline: the page at /?offline, then the stack stopped: the file alone draws it.
  const offline = await browser.newPage();
  offline.on('pageerror', (e) => errors.push(String(e)));
  await offline.goto('http://10.0.0.2/?offline', { waitUntil: 'load', timeout: 15_000 });
  assert.is((await stack.stop()).code, 0);
  const opened = await openSaved(offline, saved);
  assert.ok(opened.rows.some((r) => r.conn === conn && r.retrans > 0), JSON.stringify(opened.rows));
  await offline.click(`#connections tbody tr[data-conn="${conn}"]`);
  const drawn = await until('the saved trace\'s charts', 10_000, () => chartCounts(offline), (c) => c.segments > 10 && c.retransmissions > 0 && c.litState !== '');
  assert.ok(drawn.ladderArrows > 0, JSON.stringify(drawn));
  await offline.screenshot({ path: path.join(ARTIFACTS, 'page-offline.png') });
  assert.equal(errors, [], 'no script errors');
}

it('the one-file page (Save page), opened from file:// with no stack, draws a saved trace', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tapstack-page-'));
  try {
    const saved = path.join(tmp, 'lesson.jsonl');
    const lesson = lossyTransfer({ segments: 60, lost: [6, 13, 20, 27, 34, 41, 48, 55], serverPort: 80 });
    writeFileSync(saved, lesson.client.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const final = lastTransition(lesson.client, lesson.conn).current!;
    const html = path.join(tmp, 'tapstack-page.html');
    await withNamespace(async (ns) => {
      const stack = await ns.startStack(['--tap', 'tap0']);
      const got = await ns.exec('curl', ['-sS', '--max-time', '10', '-o', html, 'http://10.0.0.2/page.html'], 15_000);
      assert.is(got.code, 0, got.stderr);
      assert.is((await stack.stop()).code, 0);
      await withBrowser(ns, tmp, async (browser) => {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        await page.goto(`file://${html}`, { waitUntil: 'load', timeout: 15_000 });
        await until('the page in offline mode', 5000, () => pageView(page), (v) => v.status.startsWith('offline'));
        const view = await openSaved(page, saved);
        assert.equal(view.rows.map((r) => [r.conn, r.state, r.retrans]), [[lesson.conn, final, 8]]);
        assert.match(view.stateSvg, new RegExp(final));
        assert.ok(view.traceLines > 100);
        await page.screenshot({ path: path.join(ARTIFACTS, 'page-offline-file.png') });
        assert.equal(errors, [], 'no script errors');
      });
    }, 'page');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
