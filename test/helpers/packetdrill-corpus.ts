// Where the packetdrill corpus is (../shared/packetdrill: Google's scripts, GPL-2.0, external
// test data read in place, never copied), its tier-A list and Google's verdicts on Linux.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// The corpus sits beside the checkout (../shared/packetdrill); a clone elsewhere (CI clones
// into a temporary directory) finds it at the machine's shared folder, /work/shared.
export const CORPUS =
  process.env.PACKETDRILL_DIR ??
  [path.resolve(ROOT, '../shared/packetdrill'), '/work/shared/packetdrill'].find((d) => existsSync(path.join(d, 'README.md'))) ??
  path.resolve(ROOT, '../shared/packetdrill');

export const corpusAvailable = existsSync(path.join(CORPUS, 'README.md'));

/** The tier-A tables of the corpus README: "head/..." and "v2.0/..." paths. */
export function tierA(): string[] {
  const out: string[] = [];
  let section = '';
  for (const line of readFileSync(path.join(CORPUS, 'README.md'), 'utf8').split('\n')) {
    const heading = /^### (head|v2\.0)\//.exec(line);
    if (heading) section = heading[1]!;
    const row = /^\| `(gtests\/[^`]+\.pkt)`/.exec(line);
    if (row && section) out.push(`${section}/${row[1]}`);
  }
  return out;
}

/** Google's packetdrill on Linux, per script: 'PASS', or 'FAIL <first error>'. */
export function linuxVerdicts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const tree of ['head', 'v2.0']) {
    const file = path.join(CORPUS, tree, 'LINUX-RESULTS.tsv');
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [script, verdict, detail] = line.split('\t');
      if (script && verdict) out.set(`${tree}/${script}`, verdict === 'PASS' ? 'PASS' : `${verdict} ${detail ?? ''}`.trim());
    }
  }
  return out;
}
