// tests/html/check_report.mjs: opens a memlens HTML report in headless Chromium and checks that
// it works: no console or page errors, the flamegraph shows the expected frames, a click zooms,
// a search highlights, the page is interactive within a time limit, and it shows the figures
// that make_reports computed from the snapshot.
//
//   node check_report.mjs <report.html> [--expect NAME]... [--search TEXT] [--max-ready-ms N]
//                         [--figures FIGURES.json]
//
// NAME and TEXT are matched as substrings of the frames' full names. FIGURES.json is what
// make_reports writes beside the report: live bytes and allocations, the allocation count, the
// peak, the top site and the recommendations, which the page must show exactly, and for a
// classified snapshot the leak summary, the suppressed sites and its longest back-reference chain. Chromium is
// $MEMLENS_CHROMIUM, else /usr/bin/chromium. Exits 77 (a CTest skip) when playwright-core or
// Chromium is missing, 1 when a check fails.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const skip = 77;
const args = process.argv.slice(2);
let report = null, search = null, maxReadyMs = 2000, figuresFile = null;
const expected = [];
// KIND:NAME pairs: a frame named like NAME is drawn, or not drawn, when the flamegraph shows KIND.
const expectedIn = [], absentIn = [];
for (let i = 0; i < args.length; ++i) {
  const a = args[i];
  if (a === "--expect") expected.push(args[++i]);
  else if (a === "--search") search = args[++i];
  else if (a === "--expect-in") expectedIn.push(args[++i].split(":"));
  else if (a === "--absent-in") absentIn.push(args[++i].split(":"));
  else if (a === "--max-ready-ms") maxReadyMs = Number(args[++i]);
  else if (a === "--figures") figuresFile = args[++i];
  else if (!report && !a.startsWith("--")) report = a;
  else {
    console.error(`unknown argument ${a}`);
    process.exit(2);
  }
}
if (!report || !existsSync(report) || (figuresFile && !existsSync(figuresFile))) {
  console.error(`usage: node check_report.mjs <report.html> [--expect NAME]... [--expect-in KIND:NAME]...` +
    ` [--absent-in KIND:NAME]... [--search TEXT] [--max-ready-ms N]` +
    ` [--figures FIGURES.json]` + (report && !existsSync(report) ? `\nno such report: ${report}` : "") +
    (figuresFile && !existsSync(figuresFile) ? `\nno such figures file: ${figuresFile}` : ""));
  process.exit(2);
}
const figures = figuresFile ? JSON.parse(readFileSync(figuresFile, "utf8")) : null;

// How the page writes figures, stated here on its own so that a page that computes or rounds a
// figure wrongly fails: digit groups, and bytes in binary units with one decimal.
function digits(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
function readableBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0, scaled = n;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    ++unit;
  }
  return unit === 0 ? `${n} B` : `${scaled.toFixed(1)} ${units[unit]}`;
}
const exactBytes = (n) => `${digits(n)} ${n === 1 ? "byte" : "bytes"}`;

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch {
  console.log("SKIP: playwright-core is not installed (run npm ci in tests/html)");
  process.exit(skip);
}
const executablePath = process.env.MEMLENS_CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.log(`SKIP: no Chromium at ${executablePath}`);
  process.exit(skip);
}

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

const browser = await chromium.launch({ executablePath, headless: true });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  const requests = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`page: ${e.message}`));
  page.on("request", (r) => { if (!r.url().startsWith("file:")) requests.push(r.url()); });

  const url = pathToFileURL(resolve(report)).href;
  const started = Date.now();
  await page.goto(url, { waitUntil: "commit" });
  await page.waitForSelector("html[data-ready=true]", { timeout: Math.max(maxReadyMs * 5, 10000) });
  const wallMs = Date.now() - started;
  // From the navigation's start, as the page's own clock sees it.
  const pageMs = await page.evaluate(() => window.memlensReport.readyMs);
  const nodes = await page.evaluate(() => window.memlensReport.nodes());
  check(pageMs <= maxReadyMs,
    `ready in ${pageMs.toFixed(0)} ms after navigation (${wallMs} ms as the test saw it, limit ${maxReadyMs} ms; ` +
    `${nodes} flamegraph nodes)`);

  const frames = () => page.evaluate(() => window.memlensReport.frames());
  const shown = await frames();
  for (const name of expected) {
    check(shown.some((f) => f.name.includes(name)), `the flamegraph shows a frame named like "${name}"`);
  }

  const box = await page.locator("#flame").boundingBox();
  const full = shown.find((f) => f.row === 0);
  check(full && Math.abs(full.width - box.width) < 1, `the root frame spans the flamegraph (${full && full.width} of ${box.width} px)`);

  // Zoom: click the widest frame of the deepest row that still has one at least 40 px wide, which
  // is narrower than the whole width unless the profile is one stack.
  const target = [...shown].filter((f) => f.row > 0 && f.width >= 40)
    .sort((a, b) => b.row - a.row || a.width - b.width)[0] || shown.find((f) => f.row > 0);
  check(Boolean(target), "there is a frame below the root to click");
  if (target) {
    const crumbsBefore = await page.locator("#crumbs").innerText();
    await page.mouse.move(box.x + target.x + target.width / 2, box.y + target.y + 9);
    const tip = await page.locator("#tip").innerText();
    check(/ of (bytes at the peak|live bytes)/.test(tip), `hovering shows a tooltip with bytes, count and share ("${tip.replace(/\n/g, " | ")}")`);
    await page.mouse.click(box.x + target.x + target.width / 2, box.y + target.y + 9);
    const zoomed = await page.evaluate(() => window.memlensReport.zoomed());
    const after = await frames();
    const same = after.find((f) => f.row === target.row && f.name === target.name);
    const crumbsAfter = await page.locator("#crumbs").innerText();
    check(zoomed === target.name, `clicking "${target.name.slice(0, 60)}" zooms into it`);
    check(same && Math.abs(same.width - box.width) < 1, `the clicked frame now spans the full width (${same && same.width.toFixed(0)} px, was ${target.width.toFixed(0)})`);
    check(crumbsAfter !== crumbsBefore && crumbsAfter.includes(target.name.slice(0, 20).split("(")[0].split("::").pop()),
      `the breadcrumb changes ("${crumbsBefore.replace(/\s+/g, " ")}" -> "${crumbsAfter.replace(/\s+/g, " ")}")`);
    await page.click("#reset");
    check(await page.evaluate(() => window.memlensReport.zoomed()) === "all", "Reset zoom goes back to all");
  }

  // The kind switch: the peak leads when the snapshot kept it, and each control redraws the one
  // tree with its own weights.
  const kinds = await page.evaluate(() => window.memlensReport.kinds());
  const leading = await page.evaluate(() => window.memlensReport.kind());
  if (figures) {
    const want = figures.peak_kept ? "peak" : "live";
    check(leading === want, `the flamegraph leads with "${leading}", expected "${want}" (kinds: ${kinds.join(", ")})`);
  }
  for (const kind of kinds) {
    await page.click(`#kinds button[data-kind="${kind}"]`);
    const now = await page.evaluate(() => window.memlensReport.kind());
    const title = await page.locator("#flame-title").innerText();
    const drawn = await frames();
    const root = drawn.find((f) => f.row === 0);
    check(now === kind && root && Math.abs(root.width - box.width) < 1 && root.bytes > 0,
      `the "${kind}" control draws its flamegraph ("${title}", ${drawn.length} frames)`);
    for (const [k, name] of expectedIn.filter(([k]) => k === kind)) {
      check(drawn.some((f) => f.name.includes(name)), `the ${k} flamegraph shows a frame named like "${name}"`);
    }
    for (const [k, name] of absentIn.filter(([k]) => k === kind)) {
      check(!drawn.some((f) => f.name.includes(name)), `the ${k} flamegraph shows no frame named like "${name}"`);
    }
  }
  for (const k of new Set([...expectedIn, ...absentIn].map(([k]) => k))) {
    check(kinds.includes(k), `the report offers the "${k}" flamegraph`);
  }
  await page.click(`#kinds button[data-kind="${leading}"]`);

  const query = search || expected[0];
  if (query) {
    await page.fill("#search", query);
    const highlighted = (await frames()).filter((f) => f.highlighted);
    const matched = await page.locator("#matched").innerText();
    check(highlighted.length > 0 && highlighted.every((f) => f.name.toLowerCase().includes(query.toLowerCase())),
      `searching "${query}" highlights ${highlighted.length} matching frames and only those`);
    check(/matched: [0-9.]+% of (bytes at the peak|live bytes)/.test(matched), `the matched share is shown ("${matched}")`);
  }

  const plotted = await page.evaluate(() => ({
    timeline: !document.getElementById("timeline-section").hidden,
    lines: document.querySelectorAll("#timeline polyline").length,
    withRss: JSON.parse(document.getElementById("memlens-data").textContent).timeline.some((p) => p.rss > 0),
    rows: document.querySelectorAll("#sites tbody tr").length,
    advice: document.querySelectorAll("#advice li").length,
    generations: JSON.parse(document.getElementById("memlens-data").textContent).collector.length,
    collector: !document.getElementById("collector-section").hidden,
    collectorRows: document.querySelectorAll("#collector tbody tr").length,
    poolCount: JSON.parse(document.getElementById("memlens-data").textContent).pools.length,
    pools: !document.getElementById("pools-section").hidden,
    poolRows: document.querySelectorAll("#pools tbody tr").length,
  }));
  console.log(`     timeline ${plotted.timeline ? "shown" : "absent"} (${plotted.lines} lines), ` +
    `${plotted.rows} site rows, ${plotted.advice} recommendations`);
  check(plotted.rows > 0, "the top-sites table has rows");
  check(!plotted.timeline || plotted.lines === (plotted.withRss ? 3 : 2),
    `the timeline draws current and peak${plotted.withRss ? ", and the resident set" : ""} (${plotted.lines} lines)`);
  check(plotted.collector === plotted.generations > 0 && plotted.collectorRows === plotted.generations,
    `the garbage collector's table shows its ${plotted.generations} generations (${plotted.collectorRows} rows)`);
  check(plotted.pools === plotted.poolCount > 0 && plotted.poolRows === plotted.poolCount,
    `the runtime pools' table shows its ${plotted.poolCount} pools (${plotted.poolRows} rows)`);

  if (figures) {
    const onPage = await page.evaluate(() => {
      const card = (figure) => {
        const c = document.querySelector(`#cards [data-figure="${figure}"]`);
        return c && { value: c.querySelector("b").textContent, exact: c.querySelector("b").title,
          what: c.querySelector("span").textContent };
      };
      const top = [...document.querySelectorAll("#sites tbody tr:first-child td")]
        .map((td) => ({ text: td.textContent, title: td.title }));
      const advice = [...document.querySelectorAll("#advice li")]
        .map((li) => ({ rule: li.dataset.rule, figure: li.querySelector(".figure")?.textContent }));
      return { peak: card("peak"), allocs: card("allocs"), live: card("live"), atPeak: card("at_peak"), top, advice };
    });
    const same = (what, got, want) => check(got === want, `${what}: the page shows "${got}", expected "${want}"`);
    same("peak", onPage.peak?.value, readableBytes(figures.peak));
    same("peak, exactly", onPage.peak?.exact, exactBytes(figures.peak));
    same("allocations", onPage.allocs?.value, digits(figures.allocations));
    same("live bytes", onPage.live?.value, readableBytes(figures.live_bytes));
    same("live bytes, exactly", onPage.live?.exact, exactBytes(figures.live_bytes));
    same("bytes at the peak, exactly", onPage.atPeak?.exact, figures.peak_kept ? exactBytes(figures.peak_bytes) : undefined);
    check(Boolean(onPage.live?.what.includes(` ${digits(figures.live_count)} live allocations`)),
      `live allocations: the page says "${onPage.live?.what}", expected ${digits(figures.live_count)}`);
    const [name, liveBytes, count] = onPage.top;
    same("top site", name?.text, figures.top_site.name);
    same("top site's live bytes", liveBytes?.text, readableBytes(figures.top_site.bytes));
    same("top site's live bytes, exactly", liveBytes?.title, exactBytes(figures.top_site.bytes));
    same("top site's allocations", count?.text, digits(figures.top_site.count));
    same("number of recommendations", onPage.advice.filter((a) => a.rule).length, figures.recommendations.length);
    for (const want of figures.recommendations) {
      check(onPage.advice.some((a) => a.rule === want.rule && a.figure === want.figure),
        `the recommendations list ${want.rule}: "${want.figure}"`);
    }
  }

  if (figures?.leak_kinds) {
    const want = figures.leak_kinds;
    const onPage = await page.evaluate(() => {
      const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)]
        .map((tr) => [...tr.querySelectorAll("td")].map((td) => ({ text: td.textContent, title: td.title })));
      const chains = [...document.querySelectorAll("#backrefs ol.chain")].map((ol) => ({
        links: [...ol.querySelectorAll("li:not(.root)")].map((li) => ({
          address: li.dataset.address, size: Number(li.dataset.size), offset: Number(li.dataset.offset) })),
        root: ol.querySelector("li.root")?.dataset.root,
      }));
      return { shown: !document.getElementById("leak-kinds-section").hidden, summary: rows("leak-summary"),
        suppressedShown: !document.getElementById("suppressed-section").hidden, suppressed: rows("suppressed"), chains };
    });
    check(onPage.shown, "the leak-kinds section is shown");
    check(onPage.summary.length === want.summary.length,
      `the leak summary has ${want.summary.length} rows (${onPage.summary.length})`);
    want.summary.forEach((k, i) => {
      const [kind, kindBytes, blocks] = onPage.summary[i] || [];
      check(kind?.text === k.kind && kindBytes?.title === exactBytes(k.bytes) && blocks?.text === digits(k.blocks),
        `${k.kind}: ${exactBytes(k.bytes)} in ${digits(k.blocks)} blocks (the page: ${kind?.text}, ${kindBytes?.title}, ${blocks?.text})`);
    });
    check(onPage.suppressedShown === want.suppressed.length > 0 && onPage.suppressed.length === want.suppressed.length,
      `the suppressed table has ${want.suppressed.length} rows (${onPage.suppressed.length})`);
    want.suppressed.forEach((r, i) => {
      const [rule, , , suppressedBytes, blocks] = onPage.suppressed[i] || [];
      check(rule?.text === r.rule && suppressedBytes?.title === exactBytes(r.bytes) && blocks?.text === digits(r.blocks),
        `suppressed by ${r.rule}: ${exactBytes(r.bytes)} in ${digits(r.blocks)} blocks ` +
        `(the page: ${rule?.text}, ${suppressedBytes?.title}, ${blocks?.text})`);
    });
    const chain = onPage.chains.find((c) => c.links[0]?.address === want.chain.links[0]?.address);
    check(want.chain.links.length > 1 && chain && chain.root === want.chain.root &&
      JSON.stringify(chain.links) === JSON.stringify(want.chain.links),
      `the back-reference chain from ${want.chain.links[0]?.address} is ${JSON.stringify(want.chain)} ` +
      `(the page: ${JSON.stringify(chain)})`);
  }

  check(requests.length === 0, `nothing is fetched from a network (${requests.length} requests${requests.length ? ": " + requests.slice(0, 3).join(", ") : ""})`);
  check(errors.length === 0, `no console or page errors${errors.length ? ": " + errors.join("; ") : ""}`);
} finally {
  await browser.close();
}
if (failures.length) {
  console.log(`${failures.length} check(s) failed for ${report}`);
  process.exit(1);
}
console.log(`all checks passed for ${report}`);
