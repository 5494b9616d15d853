// npm run bench:loss: bulk TCP under random loss, tapstack beside tuned lwIP (both on a TAP)
// and the Linux kernel over a veth pair, in one run, with the same client (tcpcli of
// ../shared/peers). tapstack runs with --offload off, and TSO, GSO and GRO are off on the TAP
// and on both veth ends, with gso_max_segs 1 (the kernel's TCP builds GSO packets whatever
// the features), so that every packet is one segment and a drop is one segment for every
// target. nftables in the client's namespace (the kernel side of the TAP, or the
// client's veth end) drops TCP frames at random, each way with probability p (ARP is
// untouched). Per loss rate the target sends (tcpcli pull from chargen, port 19, which stops
// after LOSS_BYTES) and receives (tcpcli push to discard, port 9); MB/s, 'timeout' past
// LOSS_TIMEOUT seconds.
//
// Run as root. Every target runs in namespaces made here (prefix bench-, bench/targets.ts)
// and deleted afterwards; the nftables table exists only inside them; every transfer is
// bounded in time; only processes started here are ended, by PID.
//
// Environment:
//   LOSS_RATES=0.1,1,3,10   loss rates in percent, each way (0 for a baseline row)
//   LOSS_BYTES=33554432     bytes per transfer
//   LOSS_TIMEOUT=60         seconds per transfer before it counts as 'timeout'
//   RUNS=1                  transfers per rate and direction (the table shows medians)
//   TARGETS=tapstack,lwip-tuned,kernel
//   TAPSTACK_ARGS="..."     more arguments for ./bin/tapstack (after --offload off)
//   LOSS_OFFLOAD=on         offloads left on instead: tapstack --offload on, TSO, GSO and GRO
//                           as the devices come (on), so that a drop is a whole super-frame of
//                           up to 44 segments (the issue's "offloads on" case; lwIP has none:
//                           TARGETS=tapstack,kernel)
//   --write                 also write bench/results/loss-<date>.md (or --out FILE)

import os from 'node:os';
import {
  buildPeers,
  fmt,
  kv,
  log,
  machine,
  median,
  outFileFromArgs,
  positiveInt,
  preflight,
  probeAndWarmUp,
  type Running,
  run,
  runMain,
  runSync,
  sleep,
  startKernel,
  startLwip,
  startTapstack,
  tail,
  tcpcli,
  writeReport,
} from './targets.ts';

const BYTES = positiveInt('LOSS_BYTES', 32 * 1024 * 1024);
const RUNS = positiveInt('RUNS', 1);
const TIMEOUT_S = positiveInt('LOSS_TIMEOUT', 60);
const RATES = (process.env.LOSS_RATES ?? '0.1,1,3,10').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
const TARGETS = (process.env.TARGETS ?? 'tapstack,lwip-tuned,kernel').split(',').map((s) => s.trim()).filter(Boolean);
const OFFLOAD = process.env.LOSS_OFFLOAD === 'on';
const TAPSTACK_ARGS = ['--offload', OFFLOAD ? 'on' : 'off', ...(process.env.TAPSTACK_ARGS ?? '').split(/\s+/).filter(Boolean)];
/** nftables draws numgen random mod SCALE: loss rates to 0.001%. */
const SCALE = 100_000;

const COLUMN_NAMES: Record<string, string> = { tapstack: 'tapstack', 'lwip-tuned': 'lwIP tuned', kernel: 'kernel (veth)' };
const DIRECTIONS = [
  { key: 'send', label: 'target sends (pull, port 19)' },
  { key: 'recv', label: 'target receives (push, port 9)' },
] as const;
type Direction = (typeof DIRECTIONS)[number]['key'];

interface Transfer {
  target: string;
  rate: number;
  dir: Direction;
  run: number;
  /** MB/s, or why there is none ('timeout', 'failed: ...'). */
  mbps?: number;
  problem?: string;
  /** TCP frames toward the target and from it, and how many of each nftables dropped. */
  toTarget: [number, number];
  fromTarget: [number, number];
}

// ---------------------------------------------------------------------------------------
// devices and drops, inside the client's namespace

const FEATURES = ['tcp-segmentation-offload', 'generic-segmentation-offload', 'generic-receive-offload'];

/**
 * TSO, GSO and GRO off on dev (in ns), and gso_max_segs 1; what ethtool -k and ip say after.
 * The kernel's TCP builds GSO packets whatever the device's features (they are cut into
 * segments only on the way into the device), and nftables' output hook would see, and drop,
 * one such packet of up to 45 segments at once: gso_max_segs 1 makes every packet TCP builds
 * one segment.
 */
function offloadsOff(ns: string, dev: string): { text: string; allOff: boolean } {
  // Features the device cannot change ([fixed]) make ethtool -K fail while the rest change.
  try {
    runSync('ip', ['netns', 'exec', ns, 'ethtool', '-K', dev, 'tso', 'off', 'gso', 'off', 'gro', 'off']);
  } catch {
    /* read back below */
  }
  runSync('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'gso_max_segs', '1']);
  return offloadState(ns, dev);
}

/** What ethtool -k and ip say of dev's offloads (in ns). */
function offloadState(ns: string, dev: string): { text: string; allOff: boolean } {
  const k = runSync('ip', ['netns', 'exec', ns, 'ethtool', '-k', dev]);
  const states = FEATURES.map((f) => new RegExp(`^${f}: (\\S+)`, 'm').exec(k)?.[1] ?? '?');
  const segs = /gso_max_segs (\d+)/.exec(runSync('ip', ['-n', ns, '-d', 'link', 'show', 'dev', dev]))?.[1] ?? '?';
  return {
    text: `${dev}: tso ${states[0]}, gso ${states[1]}, gro ${states[2]}, gso_max_segs ${segs}`,
    allOff: states.every((s) => s === 'off') && segs === '1',
  };
}

function nft(ns: string, ...args: string[]): string {
  return runSync('ip', ['netns', 'exec', ns, 'nft', ...args]);
}

/** The table inet loss in ns: a chain on input and one on output, empty (no loss). */
function lossTable(ns: string): void {
  nft(ns, 'add', 'table', 'inet', 'loss');
  nft(ns, 'add', 'chain', 'inet', 'loss', 'in', '{ type filter hook input priority 0; policy accept; }');
  nft(ns, 'add', 'chain', 'inet', 'loss', 'out', '{ type filter hook output priority 0; policy accept; }');
}

/** TCP frames from host and to host: each counted, then dropped with probability rate %. */
function setLoss(ns: string, host: string, rate: number): void {
  const n = String(Math.round((rate / 100) * SCALE));
  for (const [chain, match] of [
    ['in', 'saddr'],
    ['out', 'daddr'],
  ] as const) {
    nft(ns, 'flush', 'chain', 'inet', 'loss', chain);
    nft(ns, 'add', 'rule', 'inet', 'loss', chain, 'ip', match, host, 'meta', 'l4proto', 'tcp', 'counter');
    if (rate > 0) nft(ns, 'add', 'rule', 'inet', 'loss', chain, 'ip', match, host, 'meta', 'l4proto', 'tcp', 'numgen', 'random', 'mod', String(SCALE), '<', n, 'counter', 'drop');
  }
}

/** [frames, dropped] of a chain since setLoss. */
function counted(ns: string, chain: 'in' | 'out'): [number, number] {
  const counts = [...nft(ns, 'list', 'chain', 'inet', 'loss', chain).matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
  return [counts[0] ?? NaN, counts[1] ?? 0];
}

// ---------------------------------------------------------------------------------------

interface Target extends Running {
  name: string;
  setup: string;
}

async function startTarget(name: string): Promise<Target | string> {
  let s: Running | string;
  if (name === 'tapstack') s = await startTapstack(BYTES, TAPSTACK_ARGS);
  else if (name === 'lwip-tuned') s = await startLwip(BYTES, 'tuned');
  else if (name === 'kernel') s = await startKernel(BYTES);
  else return `unknown target (tapstack, lwip-tuned, kernel)`;
  if (typeof s === 'string') return s;
  if (!s.canPull) {
    await s.stop();
    return 'chargen does not stop after LOSS_BYTES (no --chargen-bytes)';
  }
  const features = s.devices.map((d) => (OFFLOAD ? offloadState(d.ns, d.dev) : offloadsOff(d.ns, d.dev)));
  const setup = features.map((f) => f.text).join('; ');
  if (!OFFLOAD && !features.every((f) => f.allOff)) {
    await s.stop();
    return `offloads still on: ${setup}`;
  }
  lossTable(s.clientNs);
  return { ...s, name, setup };
}

async function transfer(t: Target, rate: number, dir: Direction, runNo: number): Promise<Transfer> {
  setLoss(t.clientNs, t.host, rate);
  const args = dir === 'send' ? ['pull', t.host, '19'] : ['push', t.host, '9', String(BYTES)];
  const r = await tcpcli(t.clientNs, args, TIMEOUT_S);
  const x: Transfer = { target: t.name, rate, dir, run: runNo, toTarget: counted(t.clientNs, 'out'), fromTarget: counted(t.clientNs, 'in') };
  setLoss(t.clientNs, t.host, 0);
  const mbps = kv(r.out, 'MBps');
  const bytes = kv(r.out, 'bytes');
  if (/error=timeout/.test(r.out)) x.problem = 'timeout';
  else if (!Number.isFinite(mbps)) x.problem = `failed: ${tail(r.out)}`;
  else if (bytes !== BYTES) x.problem = `failed: ${bytes} of ${BYTES} bytes`;
  else x.mbps = mbps;
  if (x.problem) await sleep(1_000); // let the abandoned connection's segments drain
  return x;
}

// ---------------------------------------------------------------------------------------
// the table

function cell(xs: Transfer[]): string {
  const ok = xs.filter((x) => x.mbps !== undefined).map((x) => x.mbps!);
  const bad = xs.filter((x) => x.problem);
  const badText = bad.length ? [...new Set(bad.map((x) => (x.problem === 'timeout' ? 'timeout' : 'failed')))].join(', ') : '';
  if (!xs.length) return 'n/a';
  if (!ok.length) return badText;
  const m = fmt(median(ok), 1);
  const range = ok.length > 1 ? ` (${fmt(Math.min(...ok), 1)}-${fmt(Math.max(...ok), 1)})` : '';
  return `${m}${range}${bad.length ? `, ${bad.length} ${badText}` : ''}`;
}

function ratio(a: Transfer[], b: Transfer[]): string {
  const ma = a.filter((x) => x.mbps !== undefined).map((x) => x.mbps!);
  const mb = b.filter((x) => x.mbps !== undefined).map((x) => x.mbps!);
  if (!ma.length || !mb.length) return 'n/a';
  return fmt(median(ma) / median(mb), 2);
}

function table(all: Transfer[]): string {
  const head = ['loss each way', 'direction', ...TARGETS.map((c) => `${COLUMN_NAMES[c] ?? c} MB/s`), 'tapstack / kernel', 'tapstack / lwIP tuned'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const rate of RATES) {
    for (const d of DIRECTIONS) {
      const of = (name: string) => all.filter((x) => x.rate === rate && x.dir === d.key && x.target === name);
      lines.push(`| ${rate}% | ${d.label} | ${TARGETS.map((c) => cell(of(c))).join(' | ')} | ${ratio(of('tapstack'), of('kernel'))} | ${ratio(of('tapstack'), of('lwip-tuned'))} |`);
    }
  }
  return lines.join('\n');
}

const pct = ([n, d]: [number, number]): string => `${d}/${n} (${n > 0 ? fmt((100 * d) / n, 2) : '-'}%)`;

function everyTransfer(all: Transfer[]): string {
  return all
    .map(
      (x) =>
        `- ${x.rate}% ${x.dir === 'send' ? 'target sends' : 'target receives'}, ${COLUMN_NAMES[x.target] ?? x.target}, run ${x.run}: ` +
        `${x.mbps !== undefined ? `${fmt(x.mbps, 1)} MB/s` : x.problem}; dropped toward the target ${pct(x.toTarget)}, from it ${pct(x.fromTarget)}`,
    )
    .join('\n');
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const unfit = preflight();
  if (unfit) {
    process.stderr.write(`bench:loss: ${unfit}\n`);
    return 2;
  }
  if (!RATES.every((r) => Number.isFinite(r) && r >= 0 && r < 100)) {
    process.stderr.write(`bench:loss: LOSS_RATES must be percentages in [0, 100), not '${process.env.LOSS_RATES}'\n`);
    return 2;
  }
  const args = process.argv.slice(2);
  const outFile = outFileFromArgs('bench:loss', args, 'loss-');
  if (outFile === null) return 2;
  const check = await run('nft', ['--version'], 10_000);
  if (check.code !== 0) {
    process.stderr.write(`bench:loss: nft is missing (apt-get install nftables): ${tail(check.out)}\n`);
    return 2;
  }
  const started = new Date();
  const load0 = os.loadavg();
  const peersProblem = buildPeers();
  if (peersProblem) {
    process.stderr.write(`bench:loss: ${peersProblem}\n`);
    return 2;
  }
  const notes: string[] = [];
  const targets: Target[] = [];
  const all: Transfer[] = [];
  try {
    for (const name of TARGETS) {
      const t = await startTarget(name);
      if (typeof t === 'string') notes.push(`- ${name}: not measured: ${t}`);
      else targets.push(t);
    }
    for (const t of [...targets]) {
      log(`${t.name}: ${t.setup}; TCP probe and warm-up (no loss)`);
      if (!(await probeAndWarmUp(t, 256 * 1024 * 1024))) {
        notes.push(`- ${t.name}: not measured: TCP not available`);
        targets.splice(targets.indexOf(t), 1);
      } else notes.push(`- ${t.name}: ${t.setup}`);
    }
    for (let i = 1; i <= RUNS; i++) {
      for (const rate of RATES) {
        for (const d of DIRECTIONS) {
          for (const t of targets) {
            if (!t.alive()) continue;
            const x = await transfer(t, rate, d.key, i);
            all.push(x);
            log(`run ${i}/${RUNS} ${rate}% ${d.key} ${t.name}: ${x.mbps !== undefined ? `${x.mbps} MB/s` : x.problem} (dropped ${pct(x.toTarget)} toward, ${pct(x.fromTarget)} from)`);
          }
        }
      }
    }
    for (const t of targets) if (!t.alive()) notes.push(`- ${t.name} died during the run`);
  } finally {
    for (const t of targets) await t.stop();
  }
  const load1 = os.loadavg();
  const la = (l: number[]): string => l.map((v) => v.toFixed(2)).join(' ');
  const minutes = ((Date.now() - started.getTime()) / 60_000).toFixed(1);
  const header = [
    `Measured ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC (${minutes} min) on ${machine()}.`,
    `Random loss of TCP frames each way with nftables in the client's namespace; ${BYTES} bytes per transfer (MB = 10^6 bytes), ${TIMEOUT_S} s limit each; RUNS=${RUNS} (medians, min-max in brackets), the targets taking turns transfer by transfer; tcpcli from ../shared/peers for all. tapstack arguments: ${TAPSTACK_ARGS.join(' ')}.`,
    `Load average (1, 5, 15 min) ${la(load0)} at the start, ${la(load1)} at the end.`,
  ].join('\n');
  const limit = `'timeout': not all ${BYTES} bytes in ${TIMEOUT_S} s, i.e. below ${fmt(BYTES / TIMEOUT_S / 1e6, 2)} MB/s; 'failed': the connection broke or was refused.`;
  const body = `${header}\n\n${table(all)}\n\n${limit}\n\n${OFFLOAD ? "Set-up (ethtool -k and ip -d link; offloads left on, LOSS_OFFLOAD=on):" : "Set-up (ethtool -k and ip -d link after setting TSO, GSO and GRO off and gso_max_segs 1):"}\n${notes.join('\n') || '- none'}\n`;
  process.stdout.write(`\n${body}`);
  if (outFile) {
    writeReport(outFile, 'tapstack under random loss', 'bench:loss', ['LOSS_RATES', 'LOSS_BYTES', 'LOSS_TIMEOUT', 'RUNS', 'TARGETS', 'TAPSTACK_ARGS'], args, `${body}\nEvery transfer (frames dropped by nftables / frames seen):\n\n${everyTransfer(all)}\n`);
  }
  return 0;
}

runMain('bench:loss', main);
