// The stack as a client: brings a stack up on a TAP, fetches a URL with Node's own http client
// over a stack connection (createConnection), and prints the status, size and SHA-256 of the
// body. Run it inside a network namespace of your own (it needs root for the TAP):
//
//   ip netns exec lab node --import tsx examples/fetch.ts --tap tap0 http://10.0.0.1:8080/file
//
// Options: --tap NAME (tap0), --ip A.B.C.D/N (10.0.0.2/24), --host-ip A.B.C.D/N (10.0.0.1/24),
// --out FILE (also write the body there), --expect-sha256 HEX (exit 1 on a different body).

import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import http from 'node:http';
import { createStack } from '../src/index.ts';

interface FetchOptions {
  tap: string;
  ip: string;
  hostIp: string;
  out: string | undefined;
  expectSha256: string | undefined;
  url: URL;
}

function parseArgs(argv: string[]): FetchOptions {
  const o: Partial<FetchOptions> & { tap: string; ip: string; hostIp: string } = { tap: 'tap0', ip: '10.0.0.2/24', hostIp: '10.0.0.1/24' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--tap') o.tap = value();
    else if (arg === '--ip') o.ip = value();
    else if (arg === '--host-ip') o.hostIp = value();
    else if (arg === '--out') o.out = value();
    else if (arg === '--expect-sha256') o.expectSha256 = value().toLowerCase();
    else if (!arg.startsWith('--') && !o.url) o.url = new URL(arg);
    else throw new Error(`unknown argument '${arg}'`);
  }
  if (!o.url || o.url.protocol !== 'http:') throw new Error('usage: fetch.ts [--tap NAME] [--ip CIDR] [--host-ip CIDR] [--out FILE] http://HOST:PORT/PATH');
  return { out: undefined, expectSha256: undefined, ...o, url: o.url };
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const stack = await createStack({ tap: options.tap, ip: options.ip, hostIp: options.hostIp });
  try {
    const started = performance.now();
    const { url } = options;
    const port = Number(url.port || 80);
    const file: WriteStream | null = options.out ? createWriteStream(options.out) : null;
    const { status, bytes, sha256 } = await new Promise<{ status: number; bytes: number; sha256: string }>((resolve, reject) => {
      // Node's http client, unmodified, over a connection of our stack.
      const request = http.get(url, { createConnection: () => stack.connect({ host: url.hostname, port }) }, (response) => {
        const hash = createHash('sha256');
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          received += chunk.length;
          if (file && !file.write(chunk)) {
            response.pause();
            file.once('drain', () => response.resume());
          }
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, bytes: received, sha256: hash.digest('hex') }));
        response.on('error', reject);
      });
      request.on('error', reject);
    });
    if (file) await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const secs = (performance.now() - started) / 1000;
    process.stdout.write(`fetched status=${status} bytes=${bytes} sha256=${sha256} secs=${secs.toFixed(3)} MBps=${(bytes / secs / 1e6).toFixed(1)}\n`);
    if (options.expectSha256 && options.expectSha256 !== sha256) {
      process.stderr.write(`fetch: body SHA-256 ${sha256} differs from the expected ${options.expectSha256}\n`);
      return 1;
    }
    return status === 200 ? 0 : 1;
  } finally {
    await stack.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`fetch: ${err.message}\n`);
    process.exit(1);
  },
);
