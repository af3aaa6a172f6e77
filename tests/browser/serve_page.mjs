// Browser test of the page `luminars serve` serves at `/`: a person types a prompt, fixes the seed,
// presses Generate and gets a decoded picture of the model's resolution in the gallery; the
// two-pass control follows the model folder's default; an out-of-range step count shows the
// server's message; the server stops cleanly on SIGTERM.
//
//   node tests/browser/serve_page.mjs <path-to-luminars> <artifact-dir>
//
// Needs npm's playwright-core (`npm ci --prefix tests/browser`) and a Chromium (Debian's
// /usr/bin/chromium, or $CHROMIUM). Exit codes: 0 passed, 1 failed (one line saying why),
// 77 skipped (playwright-core or Chromium missing).
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

const PROMPT = "red heart, noto style";
const STARTUP_TIMEOUT_MS = 120_000;   // loading the shipped model
const GENERATE_TIMEOUT_MS = 120_000;
const EXIT_TIMEOUT_MS = 10_000;

const [binary, artifactDir] = process.argv.slice(2);
if (!binary || !artifactDir) {
  console.error("usage: node serve_page.mjs <path-to-luminars> <artifact-dir>");
  process.exit(2);
}

let server = null, serverExit = null, browser = null;
const serverLog = [];
// Never leave the server behind, even when ctest stops this script.
process.on("exit", () => { if (server && !serverExit) server.kill("SIGKILL"); });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(1));

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (e) {
  console.log(`SKIP: playwright-core cannot be imported (run: npm ci --prefix tests/browser): ${e.message.split("\n")[0]}`);
  process.exit(process.env.LUMINARS_CI === "1" ? 1 : 77);  // in CI a skip is a failure
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!fs.existsSync(executablePath)) {
  console.log(`SKIP: no Chromium at ${executablePath} (apt-get install chromium, or set CHROMIUM)`);
  process.exit(process.env.LUMINARS_CI === "1" ? 1 : 77);  // in CI a skip is a failure
}
if (!fs.existsSync(binary)) await fail(`no luminars binary at ${binary}`);

function fail(message) {
  console.log(`FAIL: ${message}`);
  if (serverLog.length) console.log("server output (last lines):\n  " + serverLog.slice(-20).join("\n  "));
  if (server && !serverExit) server.kill("SIGKILL");
  const closing = browser ? browser.close().catch(() => {}) : Promise.resolve();
  closing.finally(() => process.exit(1));
  return new Promise(() => {});   // never resolves: the process is exiting
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms); }),
  ]);
}

// Starts the server and resolves with its base URL once it prints "listening on http://…".
function startServer() {
  server = spawn(binary, ["serve", "--port", "0", "--host", "127.0.0.1"], { stdio: ["ignore", "pipe", "pipe"] });
  serverExit = null;
  const exited = new Promise((resolve) => server.on("exit", (code, signal) => { serverExit = { code, signal }; resolve(serverExit); }));
  server.exited = exited;
  readline.createInterface({ input: server.stderr }).on("line", (l) => serverLog.push(l));
  const lines = readline.createInterface({ input: server.stdout });
  return withTimeout(new Promise((resolve, reject) => {
    server.on("error", (e) => reject(new Error(`cannot start ${binary}: ${e.message}`)));
    lines.on("line", (l) => {
      serverLog.push(l);
      const m = l.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]);
    });
    exited.then(({ code, signal }) => reject(new Error(`the server exited before listening (code ${code}, signal ${signal})`)));
  }), STARTUP_TIMEOUT_MS, "server start");
}

const started = Date.now();
try {
  const base = await startServer();
  const config = await (await fetch(`${base}/api/config`)).json();
  const resolution = config.resolution;
  if (!Number.isInteger(resolution)) throw new Error(`/api/config has no integer resolution: ${JSON.stringify(config)}`);
  // The sizes the model was trained at, as its luminars.json lists them (the shipped model's folder).
  const folderSizes = JSON.parse(fs.readFileSync(new URL("../../models/emoji/luminars.json", import.meta.url), "utf8")).trained_sizes;
  if (JSON.stringify(config.trained_sizes) !== JSON.stringify(folderSizes))
    throw new Error(`/api/config trained_sizes ${JSON.stringify(config.trained_sizes)}, the model folder lists ${JSON.stringify(folderSizes)}`);

  // The machine's network is closed: no background connections, no QUIC, no GPU.
  browser = await chromium.launch({ executablePath, headless: true, timeout: 60_000, args: ["--no-sandbox",
    "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run"] });
  const page = await browser.newPage({ viewport: { width: 1200, height: 820 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));

  const response = await page.goto(base + "/");
  if (!response || response.status() !== 200) throw new Error(`GET / answered ${response && response.status()}`);
  const title = await page.title();
  if (!title.includes("LuminaRS")) throw new Error(`the page's title is "${title}", not LuminaRS`);
  await page.waitForSelector("body[data-ready]", { timeout: 10_000 });
  // The header names the trained sizes, and the size fields offer them.
  const header = await page.textContent("#model");
  if (!folderSizes.every((s) => header.includes(String(s)))) throw new Error(`the header "${header}" does not name the sizes ${folderSizes}`);
  const offered = await page.evaluate(() => [...document.querySelectorAll("#trained-sizes option")].map((o) => Number(o.value)));
  if (JSON.stringify(offered) !== JSON.stringify(folderSizes)) throw new Error(`the size fields offer ${offered}, not ${folderSizes}`);

  // Text to image with a fixed seed.
  await page.fill("#prompt", PROMPT);
  await page.uncheck("#random-seed");
  await page.fill("#seed", "1");
  await page.click("#generate");
  await page.waitForSelector("#gallery img", { timeout: GENERATE_TIMEOUT_MS }).catch(async (e) => {
    const error = await page.locator("#error").isVisible() ? await page.textContent("#error-text") : "";
    throw new Error(`no picture in #gallery within ${GENERATE_TIMEOUT_MS / 1000} s` +
      (error ? ` (the page says: ${error})` : ` (${e.message.split("\n")[0]})`));
  });
  await page.waitForFunction(() => {
    const img = document.querySelector("#gallery img");
    return img.complete;
  }, null, { timeout: 10_000 });
  const img = await page.evaluate(() => {
    const img = document.querySelector("#gallery img");
    const card = img.closest("figure") || img.parentElement;
    const link = card.querySelector("a[download]");
    return { complete: img.complete, w: img.naturalWidth, h: img.naturalHeight, text: card.innerText,
             download: link && link.getAttribute("download") };
  });
  if (!(img.complete && img.w === resolution && img.h === resolution))
    throw new Error(`the picture did not decode at ${resolution}×${resolution} (complete ${img.complete}, ${img.w}×${img.h})`);
  if (!/seed 1(?!\d)/.test(img.text)) throw new Error(`the picture's card does not show "seed 1": "${img.text}"`);
  if (img.download !== "luminars-1.png") throw new Error(`the download link is named "${img.download}", not luminars-1.png`);

  // Two passes: the shipped folder's default (luminars.json sampler.hires_fix) is offered checked
  // with its first size; a 128-pixel picture is then left to the folder's default, and unchecking
  // the box asks for one pass.
  const hiresFix = (JSON.parse(fs.readFileSync(new URL("../../models/emoji/luminars.json", import.meta.url), "utf8")).sampler || {}).hires_fix;
  if (!hiresFix || !(hiresFix.from > 0)) throw new Error("the shipped models/emoji/luminars.json has no sampler.hires_fix the page could offer");
  if (await page.locator("#hires-row").isHidden()) throw new Error("the two-pass control is hidden for a model whose folder draws in two passes");
  if (!(await page.isChecked("#hires"))) throw new Error("the two-pass box is not checked although the model folder's default is two passes");
  const fromText = await page.textContent("#hires-from-text");
  if (fromText !== String(hiresFix.from)) throw new Error(`the two-pass control names ${fromText} px, the folder ${hiresFix.from}`);
  const large = Math.max(...folderSizes);
  const jobBodies = [];
  page.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/api/jobs")) jobBodies.push(JSON.parse(r.postData())); });
  for (const twoPasses of [true, false]) {
    await page.setChecked("#hires", twoPasses);
    await page.fill("#width", String(large));
    await page.fill("#height", String(large));
    const before = await page.locator("#gallery img").count();
    await page.click("#generate");
    await page.waitForFunction((n) => document.querySelectorAll("#gallery img").length > n && document.querySelector("#gallery img").complete,
      before, { timeout: GENERATE_TIMEOUT_MS });
    const size = await page.evaluate(() => { const i = document.querySelector("#gallery img"); return [i.naturalWidth, i.naturalHeight]; });
    if (size[0] !== large || size[1] !== large) throw new Error(`the ${large}-pixel picture decoded at ${size[0]}×${size[1]}`);
    const sent = jobBodies[jobBodies.length - 1] || {};
    if (twoPasses && !(sent.hires_from === undefined && sent.hires_strength === hiresFix.strength))
      throw new Error(`two passes checked sent hires_from ${sent.hires_from}, hires_strength ${sent.hires_strength}; expected the folder's default from and strength ${hiresFix.strength}`);
    if (!twoPasses && sent.hires_from !== 0) throw new Error(`two passes unchecked sent hires_from ${sent.hires_from}, not 0`);
  }
  await page.fill("#width", String(resolution));
  await page.fill("#height", String(resolution));
  await page.setChecked("#hires", true);  // a picture no larger than the first pass: one pass, nothing sent about two

  // An error from the server, in words: steps out of range (the input's min/max bypassed).
  if (await page.locator("#error").isVisible()) throw new Error(`an error shows before the error check: ${await page.textContent("#error")}`);
  await page.fill("#steps", "1000");
  await page.click("#generate");
  await page.waitForSelector("#error", { state: "visible", timeout: 10_000 });
  const message = await page.textContent("#error");
  if (!/steps/i.test(message)) throw new Error(`#error does not mention steps: "${message}"`);
  const small = jobBodies[jobBodies.length - 1] || {};
  if (small.width !== resolution || "hires_from" in small || "hires_strength" in small)
    throw new Error(`a ${resolution}-pixel picture with the two-pass box checked sent ${JSON.stringify(small)}; expected no hires fields`);

  fs.mkdirSync(artifactDir, { recursive: true });
  await page.screenshot({ path: path.join(artifactDir, "serve-page.png"), fullPage: true });
  if (pageErrors.length) throw new Error(`the page threw: ${pageErrors.join("; ")}`);
  await browser.close();
  browser = null;

  // SIGTERM: a clean exit with code 0 within 10 s.
  server.kill("SIGTERM");
  const exit = await withTimeout(server.exited, EXIT_TIMEOUT_MS, "exit after SIGTERM").catch((e) => fail(e.message));
  if (exit.code !== 0) await fail(`the server exited with code ${exit.code} (signal ${exit.signal}) after SIGTERM, not 0`);
} catch (e) {
  await fail(e.message.split("\n")[0]);
}
console.log(`serve page: ok in ${((Date.now() - started) / 1000).toFixed(1)} s (screenshot: ${path.join(artifactDir, "serve-page.png")})`);
process.exit(0);
