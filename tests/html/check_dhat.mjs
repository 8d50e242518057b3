// tests/html/check_dhat.mjs: runs make_dhat, which writes two DHAT files from a real run (the
// second with block lifetimes, bklt true), then opens valgrind's DHAT viewer (dh_view.html) in
// headless Chromium, loads each file through the viewer's own file input, and checks the
// figures the page shows against those make_dhat took from the snapshot: the total bytes and
// blocks, and each listed program point's bytes and blocks under its function's frame; for the
// file with lifetimes also t-gmax and t-end, and each point's average lifetime, maximum, and
// bytes and blocks at t-gmax and at t-end.
//
//   node check_dhat.mjs <make_dhat program> [--viewer dh_view.html]
//
// The viewer is --viewer, else /usr/libexec/valgrind/dh_view.html (Debian: valgrind); Chromium
// is $MEMLENS_CHROMIUM, else /usr/bin/chromium. When playwright-core, Chromium or the viewer is
// missing it exits 77 (a skip), or 1 where every test must run ($MEMLENS_TEST_REQUIRE_TOOLS
// set); 1 when a check fails.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const skip = process.env.MEMLENS_TEST_REQUIRE_TOOLS ? 1 : 77;
const args = process.argv.slice(2);
let viewer = "/usr/libexec/valgrind/dh_view.html";
let writer = null;
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--viewer") viewer = args[++i];
  else if (!writer) writer = args[i];
  else writer = "";
}
if (!writer || !existsSync(writer)) {
  console.error("usage: node check_dhat.mjs <make_dhat program> [--viewer dh_view.html]");
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "memlens-dhat-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const dhatFile = join(dir, "dhat.json");
execFileSync(writer, [dhatFile], { stdio: "inherit" });

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch {
  console.log("MISSING: playwright-core is not installed (run npm ci in tests/html)");
  process.exit(skip);
}
const executablePath = process.env.MEMLENS_CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.log(`MISSING: no Chromium at ${executablePath}`);
  process.exit(skip);
}
if (!existsSync(viewer)) {
  console.log(`MISSING: no DHAT viewer at ${viewer} (Debian: valgrind)`);
  process.exit(skip);
}

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}
// As the viewer writes figures in an English locale: digit groups, at most two decimals.
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const digits = (n) => decimal.format(n);

// Loads `file` into a fresh page of the viewer and checks what it shows against `figures`.
async function checkFile(browser, file, figures, lifetimes) {
  const page = await browser.newPage({ locale: "en-US" });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`page: ${e.message}`));
  await page.goto(pathToFileURL(resolve(viewer)).href);
  await page.setInputFiles("input[type=file]", resolve(file));
  // The viewer writes its tree into the page once the file is read and parsed, or an error.
  await page.waitForFunction(() => /Times \{|error/i.test(document.body.innerText), null, { timeout: 20000 });
  const text = await page.evaluate(() => document.body.innerText);
  const errorShown = await page.evaluate(() => [...document.querySelectorAll(".error")].map((e) => e.textContent));
  check(errorShown.length === 0, `the viewer reports no error (${errorShown.join("; ")})`);
  check(errors.length === 0, `no console or page errors (${errors.join("; ")})`);
  check(text.includes("Mode:    heap"), "the viewer shows the file's mode");

  // Each program point is a block from "PP ..." to its closing brace.
  const blocks = [];
  for (const line of text.split("\n")) {
    if (/PP [\d.]+\/\d+ /.test(line)) blocks.push(line);
    else if (blocks.length) blocks[blocks.length - 1] += "\n" + line;
  }
  const totalOf = (block) => (block.match(/Total:\s+([\d,]+) bytes \([^)]*\) in ([\d,]+) blocks/) || []).slice(1);
  // "At t-gmax: 3,000 bytes (6.98%) in 3 blocks (75%), ..." and the like.
  const pairOf = (block, title) =>
    (block.match(new RegExp(`${title}:\\s+([\\d,.]+) bytes(?: \\([^)]*\\))? in ([\\d,.]+) blocks`)) || []).slice(1);
  const lifetimeOf = (block) => (block.match(/avg lifetime ([\d,.]+) bytes/) || [])[1];
  if (lifetimes) {
    const gmax = (text.match(/t-gmax: ([\d,.]+) bytes/) || [])[1];
    const end = (text.match(/t-end: +([\d,.]+) bytes/) || [])[1];
    check(gmax === digits(figures.t_gmax), `t-gmax: the page shows "${gmax}", expected "${digits(figures.t_gmax)}"`);
    check(end === digits(figures.t_end), `t-end: the page shows "${end}", expected "${digits(figures.t_end)}"`);
  } else {
    check(!/t-gmax: [\d,.]+ bytes/.test(text), "without lifetimes the viewer shows no t-gmax");
  }
  const root = blocks.find((b) => b.includes("#0: [root]"));
  check(Boolean(root), "the root program point is shown");
  if (root) {
    const [bytes, count] = totalOf(root);
    check(bytes === digits(figures.total_bytes), `total bytes: the page shows "${bytes}", expected "${digits(figures.total_bytes)}"`);
    check(count === digits(figures.total_blocks), `total blocks: the page shows "${count}", expected "${digits(figures.total_blocks)}"`);
  }
  for (const point of figures.points) {
    // The point whose own frames (#N, not the ancestors' ^N) name the function.
    const block = blocks.find((b) => b.split("\n").some((l) => /#[1-9]\d*: 0x[0-9A-F]+: /.test(l) && l.includes(point.function)));
    check(Boolean(block), `a program point is allocated at ${point.function}`);
    if (!block) continue;
    const [bytes, count] = totalOf(block);
    check(bytes === digits(point.bytes), `${point.function}: the page shows "${bytes}" bytes, expected "${digits(point.bytes)}"`);
    check(count === digits(point.blocks), `${point.function}: the page shows "${count}" blocks, expected "${digits(point.blocks)}"`);
    if (!lifetimes) continue;
    const expect = (what, shown, value) =>
      check(shown === digits(value), `${point.function}: ${what}: the page shows "${shown}", expected "${digits(value)}"`);
    expect("avg lifetime", lifetimeOf(block), point.lifetimes / point.blocks);
    const [maxBytes, maxBlocks] = pairOf(block, "Max");
    expect("max bytes", maxBytes, point.max_bytes);
    expect("max blocks", maxBlocks, point.max_blocks);
    const [gmaxBytes, gmaxBlocks] = pairOf(block, "At t-gmax");
    expect("bytes at t-gmax", gmaxBytes, point.gmax_bytes);
    expect("blocks at t-gmax", gmaxBlocks, point.gmax_blocks);
    const [endBytes, endBlocks] = pairOf(block, "At t-end");
    expect("bytes at t-end", endBytes, point.end_bytes);
    expect("blocks at t-end", endBlocks, point.end_blocks);
  }
  if (failures.length) console.log(text);
  await page.close();
}

const browser = await chromium.launch({ executablePath, headless: true });
try {
  for (const [file, lifetimes] of [[dhatFile, false], [dhatFile + ".lifetimes", true]]) {
    console.log(`${file}${lifetimes ? " (with lifetimes)" : ""}:`);
    await checkFile(browser, file, JSON.parse(readFileSync(file + ".figures.json", "utf8")), lifetimes);
  }
} finally {
  await browser.close();
}
if (failures.length) {
  console.log(`${failures.length} check(s) failed`);
  process.exit(1);
}
