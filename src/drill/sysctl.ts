// The shell lines of packetdrill scripts, as far as they configure TCP: the corpus's
// defaults.sh, `sysctl -q net.ipv4.X=Y` and set_sysctls.py /proc/sys/net/ipv4/X=Y. Each
// sysctl maps onto the stack's TcpConfig, or is accepted because the stack already behaves
// as that value makes Linux behave; anything else makes the script UNSUPPORTED.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { TcpConfig } from '../tcp/config.ts';

/** A construct the runner cannot map: the script is UNSUPPORTED, naming it. */
export class DrillUnsupported extends Error {}

type Setter = (value: string, config: Partial<TcpConfig>) => void;

const bool =
  (key: 'timestamps' | 'sack' | 'windowScaling' | 'dsack' | 'frto' | 'synCookies') =>
  (v: string, c: Partial<TcpConfig>): void => {
    const n = Number(v);
    // tcp_syncookies=2 (always cookies) has no equivalent.
    if (!(n === 0 || n === 1 || (key === 'frto' && n === 2))) throw new DrillUnsupported(`sysctl value ${v} for ${key}`);
    c[key] = n !== 0;
  };
const int =
  (key: 'synRetries' | 'synAckRetries' | 'maxRetries' | 'orphanRetries' | 'challengeAckLimit' | 'maxSynBacklog' | 'keepAliveProbes', min = 0) =>
  (v: string, c: Partial<TcpConfig>): void => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new DrillUnsupported(`sysctl value ${v} for ${key}`);
    c[key] = n;
  };
const ms =
  (key: 'finWait2Ms' | 'keepAliveIdleMs' | 'keepAliveIntervalMs' | 'invalidRateLimitMs' | 'rtoMinMs' | 'rtoMaxMs', unitMs: number) =>
  (v: string, c: Partial<TcpConfig>): void => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new DrillUnsupported(`sysctl value ${v} for ${key}`);
    c[key] = n * unitMs;
  };

/** The largest of "min default max": Linux autotunes a buffer up to it, and sizes wscale from it. */
function bufferMax(v: string): number {
  const parts = v.trim().split(/\s+/).map(Number);
  const max = parts[2] ?? parts[0]!;
  if (!Number.isInteger(max) || max <= 0) throw new DrillUnsupported(`buffer sizes "${v}"`);
  return max;
}

/** Sysctls (net.ipv4.*) mapped onto TcpConfig. */
const MAPPED: Record<string, Setter> = {
  tcp_timestamps: bool('timestamps'),
  tcp_sack: bool('sack'),
  tcp_window_scaling: bool('windowScaling'),
  tcp_dsack: bool('dsack'),
  tcp_frto: bool('frto'),
  tcp_syncookies: bool('synCookies'),
  tcp_syn_retries: int('synRetries', 1),
  tcp_synack_retries: int('synAckRetries', 1),
  tcp_retries2: int('maxRetries', 1),
  tcp_orphan_retries: int('orphanRetries'),
  tcp_challenge_ack_limit: int('challengeAckLimit'),
  tcp_max_syn_backlog: int('maxSynBacklog', 1),
  tcp_keepalive_probes: int('keepAliveProbes', 1),
  tcp_fin_timeout: ms('finWait2Ms', 1000),
  tcp_keepalive_time: ms('keepAliveIdleMs', 1000),
  tcp_keepalive_intvl: ms('keepAliveIntervalMs', 1000),
  tcp_invalid_ratelimit: ms('invalidRateLimitMs', 1),
  tcp_rto_min_us: ms('rtoMinMs', 0.001),
  tcp_rto_max_ms: ms('rtoMaxMs', 1),
  // Linux offers the window scale that lets tcp_rmem's max be advertised (tcp_select_initial_window).
  tcp_rmem: (v, c) => {
    c.receiveBufferSize = bufferMax(v);
  },
  tcp_wmem: (v, c) => {
    c.sendBufferSize = bufferMax(v);
  },
  tcp_congestion_control: (v, c) => {
    if (v === 'cubic') c.congestion = 'cubic';
    else if (v === 'reno') c.congestion = 'newreno';
    else if (v === 'bbr') c.congestion = 'bbr';
    else throw new DrillUnsupported(`congestion control ${v}`);
  },
};

/**
 * Sysctls whose value the stack already follows (null: any value, the mechanism being one
 * the stack does not have, so the setting cannot change what it sends).
 */
const ACCEPTED: Record<string, string[] | null> = {
  tcp_fack: ['0'], // FACK is gone from Linux since 4.15; 0 is the only meaning left
  tcp_reordering: ['3'], // the initial reordering degree (dupthresh) the stack assumes
  tcp_slow_start_after_idle: ['0'], // the stack does not reset cwnd after idle
  tcp_recovery: ['1'], // RACK-TLP loss detection (RFC 8985), which the stack does
  tcp_early_retrans: null, // superseded by RACK-TLP in the kernels the corpus targets
  tcp_tso_win_divisor: null, // no TSO deferral: the link has no segmentation offload
  tcp_min_tso_segs: null,
  tcp_ecn: ['0'], // no ECN
  tcp_ecn_option: null, // only with ECN
  tcp_pacing_ss_ratio: null, // no pacing
  tcp_pacing_ca_ratio: null,
  tcp_notsent_lowat: ['4294967295', '-1'], // no limit on unsent bytes, the stack's behaviour
  tcp_fastopen: ['0', '0x70403'], // defaults.sh's: Fast Open only for sockets that ask (none can)
  tcp_fastopen_key: null,
};

/** Every net.ipv4 sysctl the drill knows: each is per network namespace in the kernels it targets. */
export const KNOWN_SYSCTLS: readonly string[] = [...Object.keys(MAPPED), ...Object.keys(ACCEPTED)];

/** Applies one sysctl (name without "net.ipv4."); throws DrillUnsupported naming it. */
export function applySysctl(name: string, value: string, config: Partial<TcpConfig>): void {
  const setter = MAPPED[name];
  if (setter) return setter(value, config);
  if (name in ACCEPTED) {
    const values = ACCEPTED[name];
    if (values === null || values === undefined || values.includes(value)) return;
    throw new DrillUnsupported(`sysctl net.ipv4.${name}=${value}`);
  }
  throw new DrillUnsupported(`sysctl net.ipv4.${name}`);
}

/** Shell arithmetic `$((15*1024*1024))`, the only expansion the corpus's settings use. */
function expandArithmetic(text: string): string {
  return text.replace(/\$\(\(([0-9+\-*/ ()]+)\)\)/g, (_m, expr: string) => String(evaluateArithmetic(expr)));
}

function evaluateArithmetic(expr: string): number {
  const tokens = expr.match(/\d+|[+\-*/()]/g) ?? [];
  let i = 0;
  const primary = (): number => {
    const t = tokens[i++];
    if (t === '(') {
      const v = sum();
      i++;
      return v;
    }
    return Number(t);
  };
  const product = (): number => {
    let v = primary();
    while (tokens[i] === '*' || tokens[i] === '/') v = tokens[i++] === '*' ? v * primary() : Math.trunc(v / primary());
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (tokens[i] === '+' || tokens[i] === '-') v = tokens[i++] === '+' ? v + product() : v - product();
    return v;
  };
  return sum();
}

/** Splits a command line into words as the shell does: quotes group, and are dropped. */
function words(line: string): string[] {
  const out: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | null = null;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === ' ' || ch === '\t') {
      if (inWord) out.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) out.push(word);
  return out;
}

/**
 * Where a script's configuration goes: the stack maps each sysctl onto TcpConfig; the kernel
 * target writes it into its namespace's /proc/sys. `device` gets the few device commands
 * packetdrill's setup runs (qdisc, offloads, metrics flush).
 */
export interface CommandSink {
  sysctl(name: string, value: string): void;
  device(line: string): void;
}

/**
 * Runs a script's shell command as configuration: returns nothing, fills config, throws
 * DrillUnsupported for what it cannot map. scriptDir resolves `../common/defaults.sh`.
 */
export function applyCommand(text: string, scriptDir: string, config: Partial<TcpConfig>): void {
  // A fresh stack has no cached metrics; the in-memory link has no qdisc and no offloads.
  runCommand(text, scriptDir, { sysctl: (name, value) => applySysctl(name, value, config), device: () => {} });
}

/**
 * Interprets a script's shell command, never running it: sysctl settings (sysctl -q,
 * set_sysctls.py, the corpus's defaults.sh) and the device commands of packetdrill's setup go
 * to the sink; anything else throws DrillUnsupported naming it.
 */
export function runCommand(text: string, scriptDir: string, sink: CommandSink, depth = 0): void {
  const joined = text.replace(/\\\n/g, ' ');
  for (const raw of joined.split(/\n|;|&&/)) {
    const line = expandArithmetic(raw.replace(/#.*$/, '').replace(/\s*[0-9]?>\s*\/dev\/null(\s*2>&1)?/g, '').trim());
    if (line === '' || line === '#!/bin/bash') continue;
    const argv = words(line);
    const cmd = argv[0]!;
    if (cmd.endsWith('defaults.sh') && depth < 2) {
      const file = resolve(scriptDir, cmd);
      let body: string;
      try {
        body = readFileSync(file, 'utf8');
      } catch {
        throw new DrillUnsupported(`shell command ${cmd} (not found)`);
      }
      runCommand(body, dirname(file), sink, depth + 1);
    } else if (cmd === 'sysctl') {
      for (const arg of argv.slice(1)) {
        if (arg.startsWith('-')) continue;
        const m = /^net\.ipv4\.([a-z0-9_]+)=(.*)$/.exec(arg);
        if (!m) throw new DrillUnsupported(`sysctl ${arg}`);
        sink.sysctl(m[1]!, m[2]!);
      }
    } else if (cmd.endsWith('set_sysctls.py')) {
      for (const arg of argv.slice(1)) {
        const m = /^\/proc\/sys\/net\/ipv4\/([a-z0-9_]+)=(.*)$/.exec(arg);
        if (!m) throw new DrillUnsupported(`set_sysctls.py ${arg}`);
        sink.sysctl(m[1]!, m[2]!);
      }
    } else if (/^\/tmp\/sysctl_restore_/.test(cmd)) {
      // set_sysctls.py's restore script: each run starts from a fresh stack anyway.
    } else if (line === 'ip tcp_metrics flush all' || /^tc qdisc add dev tun0 root pfifo$/.test(line) || /^ethtool -K tun0( (tso|gso|gro) off)+$/.test(line)) {
      sink.device(line);
    } else {
      throw new DrillUnsupported(`shell command: ${line}`);
    }
  }
}
