// The %{ }% blocks packetdrill runs in Python: the corpus uses them almost only for
// `assert tcpi_x == N` checks on the socket's TCP_INFO. This evaluates such asserts (Python's
// comparisons, chained as Python chains them, arithmetic, and/or/not, parentheses) over
// socket.info(); any other statement makes the script UNSUPPORTED.

import { DrillUnsupported } from './sysctl.ts';

type Token = { kind: 'num' | 'name' | 'op'; text: string };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  const re = /\s*(?:(0x[0-9a-fA-F]+|\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|\/\/|\*\*|<<|>>|[-+*/%<>()&|^~]))/y;
  let i = 0;
  while (i < text.length) {
    if (/^\s*$/.test(text.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) throw new DrillUnsupported(`Python expression ${JSON.stringify(text.trim())}`);
    if (m[1] !== undefined) out.push({ kind: 'num', text: m[1] });
    else if (m[2] !== undefined) out.push({ kind: 'name', text: m[2] });
    else out.push({ kind: 'op', text: m[3]! });
    i = re.lastIndex;
  }
  return out;
}

/** One parsed assert, evaluated later against a TcpInfo-like record. */
export type Evaluate = (names: Readonly<Record<string, unknown>>) => number | boolean;

const COMPARE = ['==', '!=', '<', '<=', '>', '>='];

function parseExpression(tokens: Token[]): Evaluate {
  let i = 0;
  const peek = (): Token | undefined => tokens[i];
  const isOp = (t: string): boolean => peek()?.kind === 'op' && peek()!.text === t;
  const isWord = (t: string): boolean => peek()?.kind === 'name' && peek()!.text === t;
  const fail = (): never => {
    throw new DrillUnsupported(`Python expression near ${JSON.stringify(tokens.slice(i).map((t) => t.text).join(' '))}`);
  };

  const atom = (): Evaluate => {
    const t = tokens[i++];
    if (!t) return fail();
    if (t.kind === 'num') {
      const v = Number(t.text);
      return () => v;
    }
    if (t.kind === 'name') {
      if (t.text === 'True' || t.text === 'False') {
        const v = t.text === 'True';
        return () => v;
      }
      const name = t.text;
      return (names) => {
        const v = names[name];
        if (typeof v !== 'number' && typeof v !== 'boolean') throw new DrillUnsupported(`name ${name} in an assert`);
        return v;
      };
    }
    if (t.text === '(') {
      const e = orExpr();
      if (!isOp(')')) fail();
      i++;
      return e;
    }
    if (t.text === '-' || t.text === '+' || t.text === '~') {
      const e = unary();
      const op = t.text;
      return (n) => (op === '-' ? -Number(e(n)) : op === '~' ? ~Number(e(n)) : Number(e(n)));
    }
    return fail();
  };
  const unary = atom;
  const binary = (next: () => Evaluate, ops: string[]): (() => Evaluate) => () => {
    let left = next();
    while (peek()?.kind === 'op' && ops.includes(peek()!.text)) {
      const op = tokens[i++]!.text;
      const l = left;
      const r = next();
      left = (n) => {
        const a = Number(l(n));
        const b = Number(r(n));
        switch (op) {
          case '*':
            return a * b;
          case '/':
            return a / b;
          case '//':
            return Math.floor(a / b);
          case '%':
            return ((a % b) + b) % b;
          case '+':
            return a + b;
          case '-':
            return a - b;
          case '<<':
            return a * 2 ** b;
          case '>>':
            return Math.floor(a / 2 ** b);
          case '&':
            return a & b;
          case '^':
            return a ^ b;
          default:
            return a | b;
        }
      };
    }
    return left;
  };
  const product = binary(unary, ['*', '/', '//', '%']);
  const sum = binary(product, ['+', '-']);
  const shift = binary(sum, ['<<', '>>']);
  const bitAnd = binary(shift, ['&']);
  const bitXor = binary(bitAnd, ['^']);
  const bitOr = binary(bitXor, ['|']);
  // Python chains comparisons: a < b < c is a < b and b < c.
  const comparison = (): Evaluate => {
    const first = bitOr();
    const ops: string[] = [];
    const rest: Evaluate[] = [];
    while (peek()?.kind === 'op' && COMPARE.includes(peek()!.text)) {
      ops.push(tokens[i++]!.text);
      rest.push(bitOr());
    }
    if (ops.length === 0) return first;
    return (n) => {
      let a = Number(first(n));
      for (let k = 0; k < ops.length; k++) {
        const b = Number(rest[k]!(n));
        const op = ops[k]!;
        const ok = op === '==' ? a === b : op === '!=' ? a !== b : op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
        if (!ok) return false;
        a = b;
      }
      return true;
    };
  };
  const notExpr = (): Evaluate => {
    if (isWord('not')) {
      i++;
      const e = notExpr();
      return (n) => !e(n);
    }
    return comparison();
  };
  const andExpr = (): Evaluate => {
    let left = notExpr();
    while (isWord('and')) {
      i++;
      const l = left;
      const r = notExpr();
      left = (n) => Boolean(l(n)) && Boolean(r(n));
    }
    return left;
  };
  const orExpr = (): Evaluate => {
    let left = andExpr();
    while (isWord('or')) {
      i++;
      const l = left;
      const r = andExpr();
      left = (n) => Boolean(l(n)) || Boolean(r(n));
    }
    return left;
  };
  const e = orExpr();
  if (i < tokens.length) fail();
  return e;
}

export interface DrillAssert {
  text: string;
  evaluate: Evaluate;
}

/** Parses a %{ }% block into its asserts; throws DrillUnsupported for anything else. */
export function parseAsserts(block: string): DrillAssert[] {
  const asserts: DrillAssert[] = [];
  for (const raw of block.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const m = /^assert\s+(.*?)(?:,\s*(?:'[^']*'|"[^"]*"|[^,]*))?$/.exec(line);
    if (!m) throw new DrillUnsupported(`Python statement ${JSON.stringify(line)}`);
    // The text after the comma (assert x, message) is the message; a comma inside the test is not Python's.
    const test = line.replace(/^assert\s+/, '').split(',')[0]!;
    asserts.push({ text: test.trim(), evaluate: parseExpression(tokenize(test)) });
  }
  return asserts;
}
