// Checks on SVG text for the chart tests: well-formed XML (python3's xml.etree, a parser that
// is not ours) and counts of elements by class.
import { spawnSync } from 'node:child_process';

const PARSE_ALL = `
import json, sys, xml.etree.ElementTree as E
errors = []
for item in json.load(sys.stdin):
    try:
        E.fromstring(item["svg"].encode("utf-8"))
    except E.ParseError as e:
        errors.append(item["name"] + ": " + str(e))
print(json.dumps(errors))
`;

/**
 * Parses each SVG with python3's ElementTree, all in one process (python's start-up is the
 * cost); returns the errors, `name: message`, none when all are well-formed.
 */
export function xmlErrors(svgs: ReadonlyArray<{ name: string; svg: string }>): string[] {
  const r = spawnSync('python3', ['-c', PARSE_ALL], { input: JSON.stringify(svgs), encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`python3: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

/** Well-formed, or the parser's complaint. */
export function xmlError(svg: string): string | null {
  return xmlErrors([{ name: 'svg', svg }])[0] ?? null;
}

/** Elements whose class attribute is exactly `cls`. */
export function countClass(svg: string, cls: string): number {
  return svg.split(`class="${cls}"`).length - 1;
}
