/**
 * The run report as one self-contained HTML page (`--report run.html`): a timeline of the
 * stages (a bar per stage on the run's time axis, grouped by execution group, coloured by
 * outcome; stages a resume skipped shown as such), the run's outcome, and per stage its exit
 * code, duration, bytes moved, the objects it returned (size, sha256) and its log in a
 * collapsed `<details>` (found by the browser's find-in-page, opened for printing).
 *
 * No network, no external assets, no script needed to read it: the timeline is positioned
 * HTML and CSS, so it renders the same on screen, in print and in `--dump-dom`. The only
 * script opens every log before printing and offers "expand all".
 *
 * @module
 */

import { formatElapsed } from "../log/stage_log.ts";
import { formatBytes, type RunReport, type StageReport } from "./report.ts";

/** Options of {@link renderHtmlReport}. */
export interface HtmlReportOptions {
  /** Each stage's log text by stage id (absent: only the log file's path is shown). */
  logs?: ReadonlyMap<string, string>;
}

const ESC: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c]);
}

const RESULT_LABEL: Record<StageReport["result"], string> = {
  succeeded: "succeeded",
  failed: "failed",
  "dependency-timeout": "dependency timeout",
  cancelled: "cancelled",
  "not-run": "not run",
  skipped: "skipped (resumed)",
};

const CSS = `
:root{--ok:#1a7f37;--fail:#cf222e;--warn:#bf8700;--idle:#8c959f;--skip:#0969da;--fg:#1f2328;
--muted:#59636e;--line:#d1d9e0;--bg:#fff;--track:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;max-width:1200px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
h3{font-size:15px;margin:0}
code,pre,.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:12.5px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;
font-weight:600;vertical-align:middle}
.r-succeeded{background:var(--ok)}.r-failed{background:var(--fail)}
.r-dependency-timeout{background:var(--warn)}.r-cancelled,.r-not-run,.r-interrupted{background:var(--idle)}
.r-skipped{background:var(--skip)}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:6px 18px;
margin:12px 0}.facts div{border-left:3px solid var(--line);padding-left:8px}
.facts b{display:block;color:var(--muted);font-weight:500;font-size:12px}
.error{border:1px solid var(--fail);background:#ffebe9;padding:8px 12px;border-radius:6px}
.tl{border:1px solid var(--line);border-radius:6px;padding:8px 12px}
.tl-axis,.tl-row{display:grid;grid-template-columns:220px 1fr;align-items:center}
.tl-axis .track{height:18px;background:none}
.tick{position:absolute;top:0;font-size:11px;color:var(--muted);transform:translateX(-50%)}
.tick:first-child{transform:none}.tick:last-child{transform:translateX(-100%)}
.tl-group{font-size:12px;color:var(--muted);font-weight:600;margin:8px 0 2px;
border-top:1px dashed var(--line);padding-top:4px}
.tl-row{min-height:24px}
.tl-row .name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;padding-right:8px}
.track{position:relative;height:16px;background:var(--track);border-radius:3px}
.bar{position:absolute;top:0;height:16px;border-radius:3px;min-width:3px;
-webkit-print-color-adjust:exact;print-color-adjust:exact}
.bar.wait{opacity:.35}
.bar.skipped{background:repeating-linear-gradient(135deg,#ddf4ff 0 6px,#eef8ff 6px 12px);
border:1px dashed var(--skip);left:0;right:0}
.bar-label{position:absolute;left:6px;top:0;font-size:11px;line-height:16px;color:#0a3069;
white-space:nowrap;overflow:hidden;right:6px;text-overflow:ellipsis}
.bar-label.idle{color:var(--muted)}
.b-succeeded{background:var(--ok)}.b-failed{background:var(--fail)}
.b-dependency-timeout{background:var(--warn)}.b-cancelled,.b-not-run{background:var(--idle)}
.legend{font-size:12px;color:var(--muted);margin-top:6px}
.legend i{display:inline-block;width:12px;height:10px;border-radius:2px;margin:0 4px 0 12px;
-webkit-print-color-adjust:exact;print-color-adjust:exact}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid var(--line);vertical-align:top}th{font-weight:600;font-size:12px;color:var(--muted)}
td.num,th.num{text-align:right;white-space:nowrap}
.stage{border:1px solid var(--line);border-radius:6px;padding:10px 12px;margin:10px 0;
break-inside:avoid-page}
.stage header{display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.stage .reason{color:var(--muted)}
.sha{word-break:break-all}
details{margin-top:8px}summary{cursor:pointer;color:var(--muted)}
pre.log{background:var(--track);border:1px solid var(--line);border-radius:4px;padding:8px;
overflow:auto;max-height:480px;white-space:pre-wrap;word-break:break-word;margin:6px 0 0}
.tools{float:right}button{font:inherit;font-size:12px}
@media print{body{padding:0;max-width:none}.tools{display:none}
pre.log{max-height:none;overflow:visible}.stage{break-inside:auto}h2{break-after:avoid}}
`;

const SCRIPT = `
const all=()=>document.querySelectorAll("details.log");
let saved=[];
addEventListener("beforeprint",()=>{saved=[...all()].map(d=>d.open);all().forEach(d=>d.open=true)});
addEventListener("afterprint",()=>{all().forEach((d,i)=>d.open=saved[i]??d.open)});
document.getElementById("expand")?.addEventListener("click",e=>{
const open=e.target.dataset.open!=="1";all().forEach(d=>d.open=open);
e.target.dataset.open=open?"1":"0";e.target.textContent=open?"Collapse all logs":"Expand all logs"});
`;

function ms(iso: string | undefined): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}

const pct = (v: number) => `${Math.max(0, Math.min(100, v)).toFixed(3)}%`;

function timeline(r: RunReport, stages: StageReport[]): string {
  const t0 = ms(r.startedAt) ?? 0;
  const total = Math.max(1, r.durationMs);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    `<span class="tick" style="left:${pct(f * 100)}">${formatElapsed(f * total)}</span>`
  ).join("");
  const out = [
    `<div class="tl" id="timeline">`,
    `<div class="tl-axis"><span></span><div class="track">${ticks}</div></div>`,
  ];
  let group: number | undefined;
  for (const s of stages) {
    if (s.order !== group) {
      group = s.order;
      out.push(`<div class="tl-group">Group ${s.order}</div>`);
    }
    let bars: string;
    const start = ms(s.startedAt);
    if (s.result === "skipped") {
      bars = `<div class="bar skipped" data-result="skipped" title="${
        escapeHtml(s.reason ?? "")
      }"></div><span class="bar-label">skipped: ${escapeHtml(s.reason ?? "")}</span>`;
    } else if (start === undefined) {
      bars = `<span class="bar-label idle">${RESULT_LABEL[s.result]}</span>`;
    } else {
      const left = ((start - t0) / total) * 100;
      const wait = (s.waitMs / total) * 100;
      const run = (Math.max(0, s.durationMs - s.waitMs) / total) * 100;
      const title = `${RESULT_LABEL[s.result]}, ${formatElapsed(s.durationMs)}` +
        (s.waitMs ? ` (waited ${formatElapsed(s.waitMs)})` : "");
      bars = (s.waitMs > 0
        ? `<div class="bar wait b-${s.result}" style="left:${pct(left)};width:${pct(wait)}"></div>`
        : "") +
        `<div class="bar run b-${s.result}" data-result="${s.result}" style="left:${
          pct(left + wait)
        };width:${pct(run)}" title="${escapeHtml(title)}"></div>`;
    }
    out.push(
      `<div class="tl-row" data-stage="${escapeHtml(s.id)}" data-result="${s.result}">` +
        `<span class="name" title="${escapeHtml(s.id)}">${escapeHtml(s.id)}</span>` +
        `<div class="track">${bars}</div></div>`,
    );
  }
  out.push(
    `<div class="legend">` +
      [
        ["succeeded", "var(--ok)"],
        ["failed", "var(--fail)"],
        ["timed out waiting", "var(--warn)"],
        ["cancelled / not run", "var(--idle)"],
        ["skipped (resumed)", "var(--skip)"],
      ].map(([l, c]) => `<i style="background:${c}"></i>${l}`).join("") +
      ` &nbsp;· lighter part: waiting for dependencies</div></div>`,
  );
  return out.join("\n");
}

function logBlock(s: StageReport, body: string | undefined): string {
  if (body === undefined) {
    return `<p class="reason">Log: <code>${escapeHtml(s.logFile)}</code></p>`;
  }
  const lines = body === "" ? 0 : body.replace(/\n$/, "").split("\n").length;
  return `<details class="log"><summary>Log: ${lines} line(s) · <code>${
    escapeHtml(s.logFile)
  }</code></summary><pre class="log">${escapeHtml(body)}</pre></details>`;
}

function stageSection(s: StageReport, i: number, log: string | undefined): string {
  const returned = s.returned ?? s.objects.map((key) => ({ key, size: -1, sha256: "" }));
  const rows = returned.map((o) =>
    `<tr><td class="mono">${escapeHtml(o.key)}</td><td class="num">${
      o.size >= 0 ? formatBytes(o.size) : "-"
    }</td><td class="mono sha">${escapeHtml(o.sha256 || "-")}</td></tr>`
  ).join("");
  const facts = [
    ["exit code", s.exitCode === null ? "-" : String(s.exitCode)],
    [
      "duration",
      s.result === "skipped" || s.result === "not-run" ? "-" : formatElapsed(s.durationMs),
    ],
    ["waited", formatElapsed(s.waitMs)],
    ["bytes in", formatBytes(s.bytesIn)],
    ["bytes out", formatBytes(s.bytesOut)],
    ["artifacts", s.artifacts.length ? s.artifacts.join(", ") : "-"],
  ];
  return `<section class="stage" id="stage-${i}" data-stage="${escapeHtml(s.id)}">
<header><span class="badge r-${s.result}">${RESULT_LABEL[s.result]}</span><h3>${
    escapeHtml(s.id)
  }</h3><span class="reason">group ${s.order}${
    s.reason ? ` · ${escapeHtml(s.reason)}` : ""
  }</span></header>
<div class="facts">${facts.map(([k, v]) => `<div><b>${k}</b>${escapeHtml(v)}</div>`).join("")}</div>
${
    returned.length
      ? `<table class="returned"><thead><tr><th>returned object</th><th class="num">size</th><th>sha256</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<p class="reason">Returned nothing.</p>`
  }
${logBlock(s, log)}
</section>`;
}

/**
 * Renders a {@link RunReport} as a self-contained HTML page. Pure: logs are passed in.
 *
 * @example
 * ```ts
 * const html = renderHtmlReport(report, { logs: new Map([["base", "building...\n"]]) });
 * await Deno.writeTextFile("run.html", html);
 * ```
 */
export function renderHtmlReport(r: RunReport, opts: HtmlReportOptions = {}): string {
  const stages = [...r.stages].sort((a, b) => a.order - b.order || a.index - b.index);
  const runResult = r.result;
  const facts: [string, string][] = [
    ["exit code", String(r.exitCode)],
    ["duration", formatElapsed(r.durationMs)],
    ["started", r.startedAt.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC")],
    ["backend", `${r.backend}, ${r.arch}`],
    ["stages", `${stages.length} in ${new Set(stages.map((s) => s.order)).size} group(s)`],
    ["builds", r.buildsLocation],
    ...(r.latestBuild ? [["latest build", r.latestBuild] as [string, string]] : []),
    ["bytes in (workers)", formatBytes(stages.reduce((n, s) => n + s.bytesIn, 0))],
    ["bytes out (workers)", formatBytes(stages.reduce((n, s) => n + s.bytesOut, 0))],
  ];
  const skipped = stages.filter((s) => s.result === "skipped").length;
  if (skipped) facts.push(["resumed", `${skipped} stage(s) skipped`]);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>gangplank run ${escapeHtml(r.runId)}: ${runResult}</title>
<style>${CSS}</style></head>
<body data-result="${runResult}">
<div class="tools"><button id="expand" type="button">Expand all logs</button></div>
<h1>gangplank run <span class="mono">${escapeHtml(r.runId)}</span>
<span class="badge r-${runResult}" id="run-result">${runResult}</span></h1>
<div class="facts">${facts.map(([k, v]) => `<div><b>${k}</b>${escapeHtml(v)}</div>`).join("")}</div>
${r.error ? `<p class="error" id="run-error">${escapeHtml(r.error.message)}</p>` : ""}
<h2>Timeline</h2>
${timeline(r, stages)}
<h2>Stages</h2>
<table class="summary"><thead><tr><th>stage</th><th>group</th><th>result</th><th class="num">exit</th><th class="num">duration</th><th class="num">in</th><th class="num">out</th><th class="num">returned</th></tr></thead><tbody>
${
    stages.map((s, i) =>
      `<tr><td><a href="#stage-${i}">${escapeHtml(s.id)}</a></td><td>${s.order}</td><td>${
        RESULT_LABEL[s.result]
      }</td><td class="num">${s.exitCode ?? "-"}</td><td class="num">${
        s.result === "skipped" || s.result === "not-run" ? "-" : formatElapsed(s.durationMs)
      }</td><td class="num">${formatBytes(s.bytesIn)}</td><td class="num">${
        formatBytes(s.bytesOut)
      }</td><td class="num">${s.objects.length}</td></tr>`
    ).join("\n")
  }
</tbody></table>
${stages.map((s, i) => stageSection(s, i, opts.logs?.get(s.id))).join("\n")}
<script>${SCRIPT}</script>
</body></html>
`;
}
