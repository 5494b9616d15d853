// mosquitto for integration tests: started by the test inside its namespace, listening on one
// address, with no configuration of the machine's (a file of the test's), stopped by its PID.

import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Namespace, StackProcess } from './netns.ts';

export const hasMosquitto = (): boolean => ['mosquitto', 'mosquitto_sub', 'mosquitto_pub'].every((cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0);

/** Waits (polling every 20 ms) until done(), or throws after timeoutMs with what(). */
export async function until(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  for (const end = Date.now() + timeoutMs; !done(); await new Promise((r) => setTimeout(r, 20)))
    if (Date.now() > end) throw new Error(`timed out: ${what()}`);
}

/**
 * mosquitto on `address`:1883, anonymous, no persistence, logging to stderr (each client's
 * connection with its address: "New client connected from A:P as ID"). The process is the
 * broker itself (ip netns exec execs it): stop() ends it by its PID.
 */
export async function startMosquitto(ns: Namespace, dir: string, address = '10.0.0.1'): Promise<StackProcess> {
  const conf = path.join(dir, 'mosquitto.conf');
  await writeFile(conf, `listener 1883 ${address}\nallow_anonymous true\npersistence false\nlog_dest stderr\nconnection_messages true\n`);
  const broker = new StackProcess(ns.spawn('mosquitto', ['-c', conf]));
  await until(() => /Opening ipv4 listen socket on port 1883/.test(broker.stderr), 10_000, () => `mosquitto: ${broker.stderr}`);
  return broker;
}
