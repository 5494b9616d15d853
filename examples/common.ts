// Shared by the library examples: two stacks joined by an in-memory Ethernet link in this
// process (no TAP, no root), a throwaway self-signed certificate made with openssl, and a
// SHA-256 helper. Copy what you need: on a real network, one createStack({ tap: 'tap0', ... })
// takes the place of twoStacks().

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLinkPair, createStack, RealClock, type Stack } from '../src/index.ts';

export interface TwoStacks {
  /** 10.0.0.1 */
  a: Stack;
  /** 10.0.0.2 */
  b: Stack;
  close(): Promise<void>;
}

/** Two stacks on one wire, on real time (Node's tls, http and ws keep real timers). */
export async function twoStacks(): Promise<TwoStacks> {
  const clock = new RealClock();
  const [linkA, linkB] = createLinkPair(clock);
  const a = await createStack({ clock, link: linkA, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01' });
  const b = await createStack({ clock, link: linkB, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  return {
    a,
    b,
    async close() {
      await a.close();
      await b.close();
    },
  };
}

/** The name the certificate is for; clients pass it as `servername`. */
export const SERVER_NAME = 'tapstack.test';

/** A self-signed P-256 certificate for SERVER_NAME, valid one day, made now by openssl. */
export function selfSignedCert(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(path.join(tmpdir(), 'tapstack-cert-'));
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    // prettier-ignore
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '1', '-subj', `/CN=${SERVER_NAME}`, '-addext', `subjectAltName=DNS:${SERVER_NAME}`,
      '-keyout', key, '-out', cert], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { key: readFileSync(key), cert: readFileSync(cert) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads a stream to its end. */
export async function readAll(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** True when this file is the program node was started with (so an example can run itself). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === new URL(url).pathname;
}
