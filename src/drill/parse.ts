// A parser of packetdrill's script language (packetdrill's parser.y, documented in its
// syntax.md): options, an optional init command, then events, each a time and an action
// (a packet line, a system call, a shell command in backquotes or a %{ }% code block).
// Like packetdrill's bison grammar it works on a token stream, not on lines: a system call
// may span lines, and a packet line ends where the next event's time begins.

/** A script error, with the line it is on. */
export class DrillParseError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

/** When an event happens, in seconds; relative times are resolved by the runner. */
export type EventTime =
  | { kind: 'absolute'; at: number }
  | { kind: 'relative'; at: number }
  /** `*`: at any time. */
  | { kind: 'any' }
  /** `t1~t2` or `+t1~+t2`: anywhere in the range. */
  | { kind: 'range'; relative: boolean; from: number; to: number };

/** One TCP option as a script writes it. */
export type TcpOption =
  | { kind: 'nop' }
  | { kind: 'eol' }
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; value: number }
  | { kind: 'sackOK' }
  | { kind: 'sack'; blocks: [number, number][] }
  | { kind: 'TS'; val: number; ecr: number }
  /** Options the runner does not build or match (md5, FO, FOEXP, ...). */
  | { kind: 'other'; name: string };

export interface PacketLine {
  type: 'packet';
  /** '<' inbound (the runner sends it), '>' outbound (the stack must send it). */
  direction: '<' | '>';
  /** The flag letters (S . P F R E W U), '.' for ACK; '' for the `-` (no flags) form. */
  flags: string;
  start: number;
  end: number;
  length: number;
  ack: number | null;
  win: number | null;
  urg: number | null;
  /** null: no option list; 'any': `<...>`. */
  options: TcpOption[] | 'any' | null;
  /** `src>dst` ports, when given. */
  ports: [number, number] | null;
  /** What makes the line more than a plain IPv4 TCP packet (udp, icmp, ecn marks, ipv6, ...). */
  extras: string[];
}

/** An expression in a system call's arguments or result. */
export type Expr =
  | { kind: 'ellipsis' }
  | { kind: 'int'; value: number }
  | { kind: 'word'; name: string }
  | { kind: 'string'; value: string; ellipsis: boolean }
  | { kind: 'or'; left: Expr; right: Expr }
  | { kind: 'assign'; name: string; value: Expr }
  | { kind: 'array'; items: Expr[] }
  | { kind: 'struct'; items: Expr[] }
  | { kind: 'call'; name: string; args: Expr[] };

export interface SyscallLine {
  type: 'syscall';
  name: string;
  args: Expr[];
  result: Expr;
  /** `= -1 EINPROGRESS (...)`: the errno name. */
  errno: string | null;
  /** `...T`: the call blocks and returns T seconds after the previous event. */
  endTime: number | null;
}

export interface CommandLine {
  type: 'command';
  text: string;
}

export interface CodeBlock {
  type: 'code';
  text: string;
}

export type Action = PacketLine | SyscallLine | CommandLine | CodeBlock;

export interface DrillEvent {
  line: number;
  time: EventTime;
  action: Action;
}

export interface DrillScript {
  /** `--name=value` options (`--tolerance_usecs=10000`), value '' when none. */
  options: Map<string, string>;
  /** The backquoted command before the first event, if any. */
  initCommand: CommandLine | null;
  events: DrillEvent[];
  /** The backquoted command after the last event, if any. */
  cleanupCommand: CommandLine | null;
  /** Constructs the parser read but does not model (symbols defined with -D). */
  unknown: string[];
}

type TokenKind = 'num' | 'hex' | 'ip' | 'word' | 'string' | 'backquote' | 'code' | 'option' | 'punct' | 'end';

interface Token {
  kind: TokenKind;
  text: string;
  line: number;
}

const PUNCT3 = ['...'];
const PUNCT1 = '()[]{}<>,:=|.+-~*!/';

/** Splits a script into tokens, dropping comments (C and C++ style, as packetdrill's lexer). */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  const n = source.length;
  const fail = (msg: string): never => {
    throw new DrillParseError(line, msg);
  };
  while (i < n) {
    const c = source[i]!;
    if (c === '\n') {
      line++;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    const rest = source.slice(i, i + 2);
    if (rest === '//') {
      while (i < n && source[i] !== '\n') i++;
      continue;
    }
    if (rest === '/*') {
      const close = source.indexOf('*/', i + 2);
      if (close < 0) fail('unterminated /* comment');
      line += countLines(source, i, close);
      i = close + 2;
      continue;
    }
    if (rest === '%{') {
      const close = source.indexOf('}%', i + 2);
      if (close < 0) fail('unterminated %{ code block');
      tokens.push({ kind: 'code', text: source.slice(i + 2, close), line });
      line += countLines(source, i, close);
      i = close + 2;
      continue;
    }
    if (c === '`') {
      const close = source.indexOf('`', i + 1);
      if (close < 0) fail('unterminated backquoted command');
      tokens.push({ kind: 'backquote', text: source.slice(i + 1, close), line });
      line += countLines(source, i, close);
      i = close + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let text = '';
      while (j < n && source[j] !== '"') {
        if (source[j] === '\\' && j + 1 < n) {
          const e = source[j + 1]!;
          text += e === 'n' ? '\n' : e === 't' ? '\t' : e === '0' ? '\0' : e;
          j += 2;
        } else {
          if (source[j] === '\n') line++;
          text += source[j++];
        }
      }
      if (j >= n) fail('unterminated string');
      tokens.push({ kind: 'string', text, line });
      i = j + 1;
      continue;
    }
    // `--name=value` at the start of the script (packetdrill's OPTION token).
    if (rest === '--' && /[a-z_]/i.test(source[i + 2] ?? '')) {
      const m = /^--[A-Za-z0-9_-]+(=("[^"]*"|\S*))?/.exec(source.slice(i))!;
      tokens.push({ kind: 'option', text: m[0], line });
      i += m[0].length;
      continue;
    }
    const tail = source.slice(i, i + 64);
    let m = /^\d+\.\d+\.\d+\.\d+/.exec(tail);
    if (m) {
      tokens.push({ kind: 'ip', text: m[0], line });
      i += m[0].length;
      continue;
    }
    m = /^0x[0-9a-fA-F]+/.exec(tail);
    if (m) {
      tokens.push({ kind: 'hex', text: m[0], line });
      i += m[0].length;
      continue;
    }
    // A float is digits, a point and digits (".1" too); "0...0.1" is 0, ..., 0.1.
    m = /^(\d*\.\d+|\d+)/.exec(tail);
    if (m && !(tail.startsWith('...') && m[0].startsWith('.'))) {
      tokens.push({ kind: 'num', text: m[0], line });
      i += m[0].length;
      continue;
    }
    m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(tail);
    if (m) {
      tokens.push({ kind: 'word', text: m[0], line });
      i += m[0].length;
      continue;
    }
    const p3 = PUNCT3.find((p) => source.startsWith(p, i));
    if (p3) {
      tokens.push({ kind: 'punct', text: p3, line });
      i += p3.length;
      continue;
    }
    if (PUNCT1.includes(c)) {
      tokens.push({ kind: 'punct', text: c, line });
      i++;
      continue;
    }
    fail(`unexpected character ${JSON.stringify(c)}`);
  }
  tokens.push({ kind: 'end', text: '', line });
  return tokens;
}

function countLines(s: string, from: number, to: number): number {
  let k = 0;
  for (let i = from; i < to; i++) if (s[i] === '\n') k++;
  return k;
}

/** Parses a whole script; throws DrillParseError at the first syntax error. */
export function parseScript(source: string): DrillScript {
  return new Parser(tokenize(source)).script();
}

class Parser {
  private pos = 0;
  /** Constructs parsed but not modelled, for the runner to report. */
  readonly unknown: string[] = [];
  constructor(private readonly tokens: Token[]) {}

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.pos + ahead, this.tokens.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'end') this.pos++;
    return t;
  }
  private is(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return (t.kind === 'punct' || t.kind === 'word') && t.text === text;
  }
  private fail(message: string, t = this.peek()): never {
    throw new DrillParseError(t.line, `${message}, found ${t.kind === 'end' ? 'end of script' : JSON.stringify(t.text)}`);
  }
  private expect(text: string): Token {
    if (!this.is(text)) this.fail(`expected "${text}"`);
    return this.next();
  }
  private integer(what: string): number {
    const t = this.peek();
    if (t.kind === 'num' && !t.text.includes('.')) return Number(this.next().text);
    if (t.kind === 'hex') return Number(this.next().text);
    // An upper-case name is a value defined on packetdrill's command line (-D MSS=1000).
    if (t.kind === 'word' && /^[A-Z][A-Z0-9_]*$/.test(t.text)) {
      this.unknown.push(`symbol ${this.next().text} (a -D definition)`);
      return NaN;
    }
    return this.fail(`expected ${what} (an integer)`);
  }
  private number(what: string): number {
    const t = this.peek();
    if (t.kind === 'num') return Number(this.next().text);
    return this.fail(`expected ${what}`);
  }

  script(): DrillScript {
    const options = new Map<string, string>();
    while (this.peek().kind === 'option') {
      const text = this.next().text.slice(2);
      const eq = text.indexOf('=');
      const value = eq < 0 ? '' : text.slice(eq + 1).replace(/^"(.*)"$/, '$1');
      options.set(eq < 0 ? text : text.slice(0, eq), value);
    }
    let initCommand: CommandLine | null = null;
    if (this.peek().kind === 'backquote') initCommand = { type: 'command', text: this.next().text };
    const events: DrillEvent[] = [];
    let cleanupCommand: CommandLine | null = null;
    while (this.peek().kind !== 'end') {
      // A backquoted command with no time at the end is the cleanup command.
      if (this.peek().kind === 'backquote' && this.peek(1).kind === 'end') {
        cleanupCommand = { type: 'command', text: this.next().text };
        break;
      }
      events.push(this.event());
    }
    return { options, initCommand, events, cleanupCommand, unknown: this.unknown };
  }

  private event(): DrillEvent {
    const line = this.peek().line;
    const time = this.eventTime();
    return { line, time, action: this.action() };
  }

  private eventTime(): EventTime {
    if (this.is('*')) {
      this.next();
      return { kind: 'any' };
    }
    const relative = this.is('+');
    if (relative) this.next();
    const at = this.number('an event time');
    if (this.is('~')) {
      this.next();
      if (relative) this.expect('+');
      return { kind: 'range', relative, from: at, to: this.number('the end of a time range') };
    }
    return relative ? { kind: 'relative', at } : { kind: 'absolute', at };
  }

  private action(): Action {
    const t = this.peek();
    if (t.kind === 'backquote') return { type: 'command', text: this.next().text };
    if (t.kind === 'code') return { type: 'code', text: this.next().text };
    if (this.is('<') || this.is('>')) return this.packet();
    return this.syscall();
  }

  private packet(): PacketLine {
    const direction = this.next().text as '<' | '>';
    const extras: string[] = [];
    // packet_prefix: `ipv4 a > b :`, `gre ... :`, `mpls ... :` encapsulations.
    while (this.is('ipv4') || this.is('ipv6') || this.is('gre') || this.is('mpls')) {
      extras.push(this.peek().text);
      while (!this.is(':') && this.peek().kind !== 'end') this.next();
      this.expect(':');
    }
    // opt_ip_info: (ect0), [tos 0x1, flowlabel 0x...], (ttl 64) and the like.
    if (this.is('(') || this.is('[')) {
      const close = this.is('(') ? ')' : ']';
      this.next();
      const words: string[] = [];
      while (!this.is(close) && this.peek().kind !== 'end') words.push(this.next().text);
      this.expect(close);
      extras.push(`ip-info ${words.join(' ')}`);
    }
    // `encap psp spi 23`: an encapsulation (PSP) newer than syntax.md.
    if (this.is('encap')) {
      this.next();
      const words = [this.next().text];
      while (this.peek().kind === 'word' && !/^[SPFREWU]+$/.test(this.peek().text) && this.peek(1).kind === 'num') words.push(this.next().text, this.next().text);
      extras.push(`encap ${words.join(' ')}`);
    }
    if (this.is('udp') || this.is('icmp')) {
      // UDP and ICMP lines: kept as an extra, their fields skipped up to the next event.
      extras.push(this.next().text);
      this.skipToNextEvent();
      return { type: 'packet', direction, flags: '', start: 0, end: 0, length: 0, ack: null, win: null, urg: null, options: null, ports: null, extras };
    }
    let ports: [number, number] | null = null;
    if (this.peek().kind === 'num' && this.is('>', 1)) {
      const src = this.integer('a port');
      this.next();
      ports = [src, this.integer('a port')];
    }
    const flags = this.flags();
    const start = this.integer('a start sequence number');
    this.expect(':');
    const end = this.integer('an end sequence number');
    this.expect('(');
    const length = this.integer('a length');
    this.expect(')');
    let ack: number | null = null;
    let win: number | null = null;
    let urg: number | null = null;
    for (;;) {
      if (this.is('ack')) {
        this.next();
        ack = this.integer('an ack number');
      } else if (this.is('win')) {
        this.next();
        win = this.integer('a window');
      } else if (this.is('urg')) {
        this.next();
        urg = this.integer('an urgent pointer');
      } else break;
    }
    let options: TcpOption[] | 'any' | null = null;
    if (this.is('<')) options = this.tcpOptions();
    return { type: 'packet', direction, flags, start, end, length, ack, win, urg, options, ports, extras };
  }

  /** flags: WORD | '.' | WORD '.' | '-' */
  private flags(): string {
    if (this.is('-')) {
      this.next();
      return '';
    }
    let flags = '';
    if (this.peek().kind === 'word') {
      flags = this.next().text;
      if (!/^[SPFREWU]+$/.test(flags)) this.fail('expected TCP flags (S . P F R E W U)', this.peek(-1));
    }
    if (this.is('.')) {
      this.next();
      flags += '.';
    }
    if (flags === '') this.fail('expected TCP flags');
    return flags;
  }

  private tcpOptions(): TcpOption[] | 'any' {
    this.expect('<');
    if (this.is('...')) {
      this.next();
      this.expect('>');
      return 'any';
    }
    const list: TcpOption[] = [];
    for (;;) {
      list.push(this.tcpOption());
      if (this.is(',')) {
        this.next();
        continue;
      }
      this.expect('>');
      return list;
    }
  }

  private tcpOption(): TcpOption {
    const t = this.next();
    if (t.kind !== 'word') this.fail('expected a TCP option', t);
    switch (t.text) {
      case 'nop':
        return { kind: 'nop' };
      case 'eol':
        return { kind: 'eol' };
      case 'mss':
        return { kind: 'mss', value: this.integer('an MSS') };
      case 'wscale':
        return { kind: 'wscale', value: this.integer('a window scale') };
      case 'sackOK':
        return { kind: 'sackOK' };
      case 'sack': {
        const blocks: [number, number][] = [];
        while (this.peek().kind === 'num') {
          const left = this.integer('a SACK block edge');
          this.expect(':');
          blocks.push([left, this.integer('a SACK block edge')]);
        }
        return { kind: 'sack', blocks };
      }
      case 'TS': {
        this.expect('val');
        const val = this.integer('a TS val');
        this.expect('ecr');
        return { kind: 'TS', val, ecr: this.integer('a TS ecr') };
      }
      default:
        // md5, FO, FOEXP, exp, ...: their values run to the next ',' or '>'.
        while (!this.is(',') && !this.is('>') && this.peek().kind !== 'end') this.next();
        return { kind: 'other', name: t.text };
    }
  }

  /** Skips the fields of a line the parser does not model, up to the next event's time. */
  private skipToNextEvent(): void {
    let depth = 0;
    for (;;) {
      const t = this.peek();
      if (t.kind === 'end') return;
      if (depth === 0 && (t.kind === 'num' || this.is('+') || this.is('*') || t.kind === 'backquote' || t.kind === 'code') && t.line > this.peek(-1).line) return;
      if (this.is('(') || this.is('[') || this.is('{')) depth++;
      if (this.is(')') || this.is(']') || this.is('}')) depth--;
      this.next();
    }
  }

  private syscall(): SyscallLine {
    let endTime: number | null = null;
    if (this.is('...')) {
      this.next();
      endTime = this.number('the end time of a blocking call');
    }
    const nameToken = this.next();
    if (nameToken.kind !== 'word') this.fail('expected a packet, a system call or a command', nameToken);
    this.expect('(');
    const args = this.is(')') ? [] : this.expressionList(')');
    this.expect(')');
    this.expect('=');
    const result = this.expression();
    let errno: string | null = null;
    if (this.peek().kind === 'word' && /^E[A-Z0-9]+$/.test(this.peek().text)) errno = this.next().text;
    // The note, `(Operation now in progress)`, is free text.
    if (this.is('(')) {
      this.next();
      while (!this.is(')') && this.peek().kind !== 'end') this.next();
      this.expect(')');
    }
    return { type: 'syscall', name: nameToken.text, args, result, errno, endTime };
  }

  private expressionList(close: string): Expr[] {
    const items: Expr[] = [this.expression()];
    while (this.is(',')) {
      this.next();
      if (this.is(close)) break;
      items.push(this.expression());
    }
    return items;
  }

  private expression(): Expr {
    let left = this.primary();
    for (;;) {
      if (this.is('|')) {
        this.next();
        left = { kind: 'or', left, right: this.primary() };
      } else if (this.is('=') && (left.kind === 'word' || left.kind === 'call')) {
        this.next();
        const name = left.kind === 'word' ? left.name : left.name;
        left = { kind: 'assign', name, value: this.expression() };
      } else return left;
    }
  }

  private primary(): Expr {
    const t = this.peek();
    if (this.is('...')) {
      this.next();
      return { kind: 'ellipsis' };
    }
    if (this.is('-') && this.peek(1).kind === 'num') {
      this.next();
      return { kind: 'int', value: -this.number('a number') };
    }
    if (t.kind === 'num' || t.kind === 'hex') return { kind: 'int', value: Number(this.next().text) };
    if (t.kind === 'string') {
      this.next();
      const ellipsis = this.is('...');
      if (ellipsis) this.next();
      return { kind: 'string', value: t.text, ellipsis };
    }
    if (t.kind === 'ip') return { kind: 'string', value: this.next().text, ellipsis: false };
    if (this.is('[')) {
      this.next();
      const items = this.is(']') ? [] : this.expressionList(']');
      this.expect(']');
      return { kind: 'array', items };
    }
    if (this.is('{')) {
      this.next();
      const items = this.is('}') ? [] : this.expressionList('}');
      this.expect('}');
      return { kind: 'struct', items };
    }
    if (t.kind === 'word') {
      this.next();
      if (this.is('(')) {
        this.next();
        const args = this.is(')') ? [] : this.expressionList(')');
        this.expect(')');
        return { kind: 'call', name: t.text, args };
      }
      return { kind: 'word', name: t.text };
    }
    return this.fail('expected an expression');
  }
}
