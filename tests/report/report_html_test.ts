/**
 * The HTML run report as a person sees it: rendered by real headless Chromium (Debian's
 * `chromium`), asserted on the laid-out page (positions, computed colours, pixels of a
 * screenshot), logs opened with a real mouse click and found with the browser's find.
 */
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { renderHtmlReport } from "../../lib/coordinator/report_html.ts";
import { tempDir } from "../_helpers/mod.ts";
import { openPage } from "../_helpers/chromium.ts";
import { bigRun, resumedFailedRun } from "./_fixture.ts";

const LOG_NEEDLE = "needle-7f3a: buildextend-metal4k could not find the ostree commit";

function logs(): Map<string, string> {
  const m = new Map<string, string>();
  m.set("base", "=== run gp-1, stage base ===\ngangplank: skipped (resume)\n");
  m.set(
    "metal",
    Array.from({ length: 400 }, (_, i) => `metal line ${i} <b>not bold</b> & co`).join("\n"),
  );
  m.set("metal4k", `+ cosa buildextend-metal4k\n${LOG_NEEDLE}\ngangplank: stage failed\n`);
  m.set("kola", "kola: running basic tests\ngangplank: stage cancelled\n");
  return m;
}

/** Decodes a small 8-bit RGB/RGBA PNG (a clipped screenshot) into rows of [r, g, b]. */
function decodePng(png: Uint8Array): [number, number, number][][] {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let off = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  while (off < png.length) {
    const len = dv.getUint32(off);
    const type = new TextDecoder().decode(png.subarray(off + 4, off + 8));
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = dv.getUint32(off + 8);
      height = dv.getUint32(off + 12);
      assert.equal(data[8], 8, "8-bit PNG");
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 0;
      assert.ok(channels, `colour type ${data[9]}`);
    } else if (type === "IDAT") idat.push(data);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const rows: Uint8Array[] = [];
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = Uint8Array.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? line[x - channels] : 0;
      const b = prev[x];
      const c = x >= channels ? prev[x - channels] : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = f === 1
        ? a
        : f === 2
        ? b
        : f === 3
        ? (a + b) >> 1
        : f === 4
        ? (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)
        : 0;
      line[x] = (line[x] + pred) & 0xff;
    }
    rows.push(line);
    prev = line;
  }
  return rows.map((l) =>
    Array.from(
      { length: width },
      (_, x) => [l[x * channels], l[x * channels + 1], l[x * channels + 2]],
    )
  ) as [number, number, number][][];
}

Deno.test("HTML report in Chromium: bars in order by group, failed shown red, logs open and found", async () => {
  await using tmp = await tempDir("gp-report-");
  const file = `${tmp.path}/run.html`;
  await Deno.writeTextFile(file, renderHtmlReport(resumedFailedRun(), { logs: logs() }));
  await using page = await openPage(`file://${file}`, { width: 1200, height: 1000 });

  // Stage rows in execution order, each below the previous one, under its group heading.
  const rows = await page.evaluate<{ id: string; top: number; group: string }[]>(`
    [...document.querySelectorAll(".tl-row")].map((r) => {
      let g = r.previousElementSibling;
      while (g && !g.classList.contains("tl-group")) g = g.previousElementSibling;
      return { id: r.dataset.stage, top: r.getBoundingClientRect().top, group: g?.textContent };
    })`);
  assert.deepEqual(rows.map((r) => [r.id, r.group]), [
    ["base", "Group 1"],
    ["metal", "Group 2"],
    ["metal4k", "Group 2"],
    ["kola", "Group 2"],
    ["finalize", "Group 3"],
  ]);
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i].top > rows[i - 1].top, rows[i].id);

  // Bars on the time axis: the stages of group 2 started together; metal ran longest.
  const bars = await page.evaluate<
    Record<string, { left: number; width: number; color: string; trackLeft: number }>
  >(`Object.fromEntries([...document.querySelectorAll(".tl-row")].flatMap((r) => {
      const b = r.querySelector(".bar.run");
      if (!b) return [];
      const rect = b.getBoundingClientRect();
      return [[r.dataset.stage, { left: rect.left, width: rect.width,
        color: getComputedStyle(b).backgroundColor,
        trackLeft: r.querySelector(".track").getBoundingClientRect().left }]];
    }))`);
  assert.deepEqual(Object.keys(bars), ["metal", "metal4k", "kola"]);
  assert.ok(Math.abs(bars.metal.left - bars.metal4k.left) < 2);
  assert.ok(bars.metal.width > bars.metal4k.width && bars.metal4k.width > 0);
  assert.ok(bars.metal.left > bars.metal.trackLeft);
  assert.equal(bars.metal.color, "rgb(26, 127, 55)");
  assert.equal(bars.metal4k.color, "rgb(207, 34, 46)");
  const skipped = await page.evaluate<string>(
    `document.querySelector('.tl-row[data-stage="base"] .bar-label').textContent`,
  );
  assert.match(skipped, /^skipped: succeeded in run gp-20261203074512-1a2b3c/);
  assert.equal(
    await page.evaluate(`document.querySelector('[data-stage="metal4k"] .badge').textContent`),
    "failed",
  );
  assert.equal(await page.evaluate(`document.getElementById("run-result").textContent`), "failed");

  // The pixels of a screenshot at the failed bar's centre are red, at metal's green.
  const pixel = async (stage: string) => {
    const c = await page.evaluate<{ x: number; y: number }>(`(() => {
      const b = document.querySelector('.tl-row[data-stage="${stage}"] .bar.run');
      b.scrollIntoView({ block: "center" });
      const r = b.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    })()`);
    const png = await page.screenshot({ clip: { x: c.x - 1, y: c.y - 1, width: 3, height: 3 } });
    return decodePng(png)[1][1];
  };
  const [r, g, b] = await pixel("metal4k");
  assert.ok(r > 180 && g < 80 && b < 80, `failed bar pixel ${[r, g, b]}`);
  const [r2, g2, b2] = await pixel("metal");
  assert.ok(g2 > 100 && r2 < 60 && b2 < 90, `succeeded bar pixel ${[r2, g2, b2]}`);

  // Logs are collapsed; a real mouse click on the summary opens one.
  const closed = await page.evaluate<{ open: boolean[]; visible: boolean }>(`({
    open: [...document.querySelectorAll("details.log")].map((d) => d.open),
    visible: document.querySelector('[data-stage="metal"] pre.log').checkVisibility() })`);
  assert.deepEqual(closed, { open: [false, false, false, false], visible: false });
  const at = await page.evaluate<{ x: number; y: number }>(`(() => {
    const s = document.querySelector('[data-stage="metal"] details.log summary');
    s.scrollIntoView({ block: "center" });
    const r = s.getBoundingClientRect();
    return { x: r.left + 10, y: r.top + r.height / 2 };
  })()`);
  for (const type of ["mousePressed", "mouseReleased"]) {
    await page.send("Input.dispatchMouseEvent", { type, ...at, button: "left", clickCount: 1 });
  }
  const opened = await page.evaluate<{ open: boolean; height: number; text: string }>(`(() => {
    const d = document.querySelector('[data-stage="metal"] details.log');
    const pre = d.querySelector("pre");
    return { open: d.open && pre.checkVisibility(), height: pre.getBoundingClientRect().height,
      text: pre.innerText };
  })()`);
  assert.equal(opened.open, true);
  assert.ok(opened.height > 100, `log height ${opened.height}`);
  assert.match(opened.text, /^metal line 399 <b>not bold<\/b> & co$/m);

  // The browser's find (window.find, Chromium's find-in-page engine) reaches into a collapsed
  // log; text hidden with display:none is not found (the control below).
  const found = await page.evaluate<{ found: boolean; open: boolean }>(`(() => {
    getSelection().removeAllRanges();
    const found = window.find(${JSON.stringify(LOG_NEEDLE)});
    return { found, open: document.querySelector('[data-stage="metal4k"] details.log').open };
  })()`);
  assert.deepEqual(found, { found: true, open: false });
  const control = await page.evaluate<boolean>(`(() => {
    const div = document.createElement("div");
    div.style.display = "none";
    div.textContent = "control-needle-91c2";
    document.body.append(div);
    getSelection().removeAllRanges();
    return window.find("control-needle-91c2");
  })()`);
  assert.equal(control, false);

  // Printing opens every log; the buttons are not printed.
  await page.evaluate(`window.dispatchEvent(new Event("beforeprint"))`);
  assert.deepEqual(
    await page.evaluate(`[...document.querySelectorAll("details.log")].map((d) => d.open)`),
    [true, true, true, true],
  );
  await page.send("Emulation.setEmulatedMedia", { media: "print" });
  assert.equal(
    await page.evaluate(`getComputedStyle(document.querySelector(".tools")).display`),
    "none",
  );

  const png = await page.screenshot({ fullPage: true });
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  assert.ok(png.length > 20_000);
});

Deno.test("HTML report: self-contained, escaped, and small (20 stages under 1 MB plus logs)", () => {
  const big = bigRun(20, 12);
  const logText = new Map(big.stages.map((s) => [s.id, `log of ${s.id}\n`.repeat(2000)]));
  const html = renderHtmlReport(big, { logs: logText });
  const logBytes = [...logText.values()].reduce(
    (n, t) => n + new TextEncoder().encode(t).length,
    0,
  );
  const size = new TextEncoder().encode(html).length;
  assert.ok(size - logBytes < 1024 * 1024, `${size - logBytes} bytes besides the logs`);
  assert.ok(size - logBytes < 200 * 1024, `${size - logBytes} bytes besides the logs`);
  // No network: nothing fetched from anywhere, and the page's CSP forbids it.
  assert.doesNotMatch(html, /\b(src|href)=["']?(https?:)?\/\//i);
  assert.doesNotMatch(html, /@import|url\(/);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  // Hostile text stays text.
  const r = resumedFailedRun();
  r.stages[2].id = `<img src=x onerror=alert(1)>`;
  const evil = renderHtmlReport(r, {
    logs: new Map([[r.stages[2].id, "</pre><script>alert(2)</script>"]]),
  });
  assert.doesNotMatch(evil, /<img src=x|<script>alert/);
  assert.match(evil, /&lt;\/pre&gt;&lt;script&gt;alert\(2\)&lt;\/script&gt;/);
});
