// The live page's HTML and CSS, as a template (compiled into dist/ with the rest, so the
// built package serves it without data files). The page itself is src/teach/page/page.js.

import type { Stack } from '../stack.ts';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The stack's counters as a table, as they were when the page was served. */
function countersTable(stack: Stack): string {
  const rows: string[] = [];
  for (const [layer, c] of Object.entries(stack.counters())) {
    const drops = Object.entries(c.drops)
      .map(([reason, n]) => `${escapeHtml(reason)}: ${n}`)
      .join(', ');
    rows.push(`<tr><td>${escapeHtml(layer)}</td><td>${c.rx}</td><td>${c.tx}</td><td>${drops || '-'}</td></tr>`);
  }
  return `<table class="counters"><tr><th>layer</th><th>rx</th><th>tx</th><th>drops</th></tr>\n${rows.join('\n')}\n</table>`;
}

const STYLE = `
  :root { font: 13px/1.35 system-ui, sans-serif; color: #222; background: #fafafa; }
  body { margin: 0; padding: 8px 12px; }
  header { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 6px; }
  header h1 { font-size: 16px; margin: 0 12px 0 0; }
  #status { padding: 1px 6px; border-radius: 3px; background: #ddd; }
  #status.live { background: #c8ecc8; } #status.offline { background: #d8e4f8; } #status.paused { background: #f8e8b0; }
  #filter { width: 22em; }
  table { border-collapse: collapse; }
  td, th { padding: 1px 6px; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
  th { background: #eee; position: sticky; top: 0; }
  td:first-child, th:first-child, td.state { text-align: left; }
  #connections { max-height: 140px; overflow: auto; border: 1px solid #ccc; background: #fff; }
  #connections tbody tr { cursor: pointer; }
  #connections tbody tr:hover { background: #eef4ff; }
  #connections tbody tr.chosen { background: #cfe0ff; }
  #connections tbody tr.closed { color: #888; }
  #chosen { margin: 6px 0 2px; font-weight: 600; }
  #charts { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 6px; }
  #charts figure.wide { grid-column: span 2; }
  #charts figure { margin: 0; background: #fff; border: 1px solid #ccc; }
  #charts figcaption { font-size: 11px; color: #555; padding: 2px 4px; border-bottom: 1px solid #eee; }
  #charts svg { display: block; width: 100%; height: auto; }
  #trace { height: 220px; overflow: auto; border: 1px solid #ccc; background: #fff; font: 12px/1.3 ui-monospace, monospace; }
  #trace div { white-space: pre; padding: 0 4px; }
  #trace .in { color: #0a4d8c; } #trace .out { color: #222; } #trace .event { color: #8a2b00; } #trace .retransmit { color: #c00; font-weight: 600; }
  details { margin-top: 8px; }
  body.dragging { outline: 3px dashed #4a7fd8; outline-offset: -6px; }
`;

/** How the page loads its script (replaced by the script itself in the one-file page). */
export const PAGE_SCRIPT_TAG = '<script type="module" src="/teach/page/page.js"></script>';

/** The page; `stack` for its title and the counters (not in the one-file page: they would be stale). */
export function pageHtml(stack: Stack, options: { counters: boolean } = { counters: true }): string {
  const title = `tapstack ${escapeHtml(stack.address)}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width">
<style>${STYLE}</style></head>
<body>
<header>
  <h1>${title}</h1>
  <span id="status">starting</span>
  <button id="pause" type="button">Pause</button>
  <label>Open trace… <input id="open" type="file" accept=".jsonl,.json,application/json,text/plain"></label>
  <a id="download" href="/trace.jsonl" download="tapstack-trace.jsonl">Download trace</a>
  <a id="save-page" href="/page.html" download="tapstack-page.html">Save page</a>
  <input id="filter" type="search" placeholder="filter: tcp, port 80, host 10.0.0.1, not arp, retransmit…">
  <span id="counts"></span>
</header>
<section>
  <div id="connections"><table>
    <thead><tr><th>connection</th><th>state</th><th>Recv-Q</th><th>Send-Q</th><th>cwnd</th><th>ssthresh</th><th>rtt</th><th>rto</th><th>retrans</th><th>bytes sent</th><th>bytes received</th></tr></thead>
    <tbody></tbody>
  </table></div>
  <div id="chosen">no connection chosen</div>
  <div id="charts">
    <figure class="wide"><figcaption>time-sequence (segments, retransmissions, ACK and window lines, SACK)</figcaption><div id="chart-timeseq"></div></figure>
    <figure><figcaption>RFC 9293 state diagram</figcaption><div id="chart-state"></div></figure>
    <figure><figcaption>cwnd and ssthresh</figcaption><div id="chart-cwnd"></div></figure>
    <figure><figcaption>RTT samples, SRTT and RTO</figcaption><div id="chart-rtt"></div></figure>
    <figure><figcaption>ladder of the last segments</figcaption><div id="chart-ladder"></div></figure>
  </div>
</section>
<h2 style="font-size:13px;margin:6px 0 2px">trace</h2>
<div id="trace"></div>
${options.counters ? `<details><summary>counters when this page was served</summary>\n${countersTable(stack)}\n<p><a href="/stats">/stats</a> (JSON), <a href="/connections">/connections</a> (JSON), <a href="/bytes/1024">/bytes/N</a>, POST /sha256</p></details>` : ''}
${PAGE_SCRIPT_TAG}
</body></html>
`;
}
