// memory_page.mjs: the memory page tested as a user sees it, in headless Chromium (Debian's
// chromium, driven by playwright-core; no browser is downloaded). For the 4070 config with
// attention=naive (the option names below are its modes) it
// writes the page with `arenagpt mem --html`, opens it from disk and checks that:
//   - it loads with no console error, no page error and no request to anything but the file
//     itself (it works offline);
//   - the per-category bytes at the peak that the page shows equal `arenagpt mem
//     --format=json`'s at_peak bytes, and its total equals peak_bytes;
//   - hovering the largest tensor at the peak shows that tensor's name;
//   - the timeline's mode selector draws another mode's plan (recompute full: its high-water);
//   - the toggles table has a row per attention kind x recompute mode, and the card bar is
//     there with the estimate labelled as one;
//   - the nanoGPT line is shown when the committed file for the config exists;
//   - the page `train` writes (a tiny CPU run) loads without errors and shows plan == measured;
// and takes a screenshot (argument 2, default build/browser/memory_page.png).
// Usage: node tests/browser/memory_page.mjs ./arenagpt [screenshot.png]
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const BIN = resolve(process.argv[2] || "./arenagpt");
const SHOT = resolve(process.argv[3] || "build/browser/memory_page.png");
const CONFIG = "configs/small_4070.conf";
const NANOGPT = "configs/nanogpt/small_4070.json";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const MIN_SCREENSHOT_BYTES = 20000; // a blank or broken page compresses far below this

let failures = 0;
const check = (ok, what) => {
  if (ok) console.log("ok: " + what);
  else { console.log("FAILED: " + what); failures++; }
};

const tmp = mkdtempSync(join(tmpdir(), "arenagpt-page-"));
const page_path = join(tmp, "m.html");
const run = (args) => execFileSync(BIN, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
run(["mem", CONFIG, "--device=cuda", "--attention=naive", "--html=" + page_path]);
const report = JSON.parse(run(["mem", CONFIG, "--device=cuda", "--attention=naive", "--format=json"]));
const size = statSync(page_path).size;
check(size > 0 && size < 2 * 1024 * 1024, `page size ${size} bytes, under 2 MiB`);

const args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
try {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const page = await ctx.newPage();
  const errors = [], requests = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  const url = pathToFileURL(page_path).href;
  page.on("request", (r) => { if (r.url() !== url) requests.push(r.url()); });
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => window.arenagptPage !== undefined, null, { timeout: 10000 });
  check(errors.length === 0, "no console or page errors" + (errors.length ? ": " + errors.join(" | ") : ""));
  check(requests.length === 0, "no request beyond the file itself" + (requests.length ? ": " + requests.join(" ") : ""));

  const num = async (id) => Number((await page.locator(`[data-testid="${id}"]`).innerText()).replace(/,/g, ""));
  for (const c of ["params", "grads", "optimizer", "activations", "workspace"]) {
    const shown = await num("peak-" + c), want = report.at_peak[c + "_bytes"];
    check(shown === want, `page shows ${c} at the peak = ${shown}, the JSON report says ${want}`);
  }
  const body = await page.locator("body").innerText();
  check(body.includes(`device cuda (${report.dtype})`) && report.dtype === "float16",
    `the page names the dtype (device cuda (${report.dtype}))`);
  const total = await num("peak-total");
  check(total === report.peak_bytes, `page's total at the peak ${total} = report's peak_bytes ${report.peak_bytes}`);

  const biggest = report.tensors.slice().sort((a, b) => b.bytes - a.bytes)[0].name;
  const at = await page.evaluate((n) => window.arenagptPage.blockCenter(n), biggest);
  check(at !== null, `the page knows where ${biggest} is drawn`);
  if (at) {
    await page.mouse.move(at.x, at.y);
    const tip = page.locator("#tip");
    await tip.waitFor({ state: "visible", timeout: 5000 });
    const text = await tip.innerText();
    check(text.includes(biggest), `hovering the largest tensor shows its name (${biggest})`);
    check(/category|bytes|offset|allocated at event/.test(text), "the hover names category, bytes, offset and events");
  }

  // the timeline's mode selector: recompute full draws that plan (its high-water is the report's)
  const full = JSON.parse(run(["mem", CONFIG, "--device=cuda", "--attention=naive", "--recompute=full", "--format=json"]));
  const fullOption = await page.locator("#tl-mode option", { hasText: "attention naive, recompute full" }).getAttribute("value");
  await page.selectOption("#tl-mode", fullOption);
  const sub = await page.locator("#tl-sub").innerText();
  const fullHw = (full.high_water_bytes / 1048576).toFixed(1);
  check(sub.includes(`high-water ${fullHw} MiB`), `recompute full selected: "${sub}" names high-water ${fullHw} MiB`);
  await page.selectOption("#tl-mode", { label: "attention naive, recompute none (this config)" });
  check(errors.length === 0, "no errors after switching the timeline's mode" + (errors.length ? ": " + errors.join(" | ") : ""));

  const modes = await page.locator("#modes-table tr").count();
  check(modes >= 1 + 3, `the toggles table lists the modes (${modes - 1} rows)`);
  const badge = await page.locator("#card-badge").innerText();
  check(/estimate for .*rtx4070/.test(badge), `the card is labelled an estimate for rtx4070 ("${badge}")`);
  check(await page.locator('[data-testid="card-context"]').count() === 1, "the card bar has a context + libraries segment");
  if (existsSync(NANOGPT)) {
    const line = await page.locator('[data-testid="nanogpt-line"]').innerText();
    check(/nanoGPT keeps [0-9.]+ MiB for backward for this config; arenagpt keeps [0-9.]+ MiB/.test(line),
      `the nanoGPT line: "${line}"`);
  }

  // the whole page in one viewport, with the tooltip of the largest tensor showing
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: 1440, height });
  const again = await page.evaluate((n) => window.arenagptPage.blockCenter(n), biggest);
  if (again) await page.mouse.move(again.x, again.y);
  mkdirSync(dirname(SHOT), { recursive: true });
  await page.screenshot({ path: SHOT });
  const shot = statSync(SHOT).size;
  check(shot > MIN_SCREENSHOT_BYTES, `screenshot ${SHOT} (${shot} bytes)`);

  // a train run's page (CPU, a tiny model on char data): plan vs measured, no errors
  const text = Array.from({ length: 300 }, (_, i) => `To be, or not to be ${i % 7}`).join("\n");
  writeFileSync(join(tmp, "text.txt"), text);
  run(["prepare", "--input=" + join(tmp, "text.txt"), "--out=" + join(tmp, "data"), "--tokenizer=char"]);
  run(["train", "--data_dir=" + join(tmp, "data"), "--device=cpu", "--n_layer=1", "--n_head=2",
    "--n_embd=16", "--block_size=16", "--vocab_size=65", "--batch_size=2",
    "--gradient_accumulation_steps=1", "--max_iters=2", "--eval_interval=2", "--eval_iters=1",
    "--out_dir=" + join(tmp, "run")]);
  const trainPage = await ctx.newPage();
  const trainErrors = [];
  trainPage.on("console", (m) => { if (m.type() === "error") trainErrors.push(m.text()); });
  trainPage.on("pageerror", (e) => trainErrors.push(String(e)));
  await trainPage.goto(pathToFileURL(join(tmp, "run", "memory.html")).href, { waitUntil: "load" });
  await trainPage.waitForFunction(() => window.arenagptPage !== undefined, null, { timeout: 10000 });
  check(trainErrors.length === 0, "train page: no console or page errors" + (trainErrors.length ? ": " + trainErrors.join(" | ") : ""));
  check(await trainPage.locator("#measured-section").isVisible(), "train page: the plan vs measured section is shown");
  const verdicts = await trainPage.locator("#measured-table td.eq, #measured-table td.ne").allInnerTexts();
  check(verdicts.length === 7 && verdicts.every((v) => v === "equal"),
    `train page: plan == measured on every row (${verdicts.join(", ")})`);
} finally {
  await browser.close();
  rmSync(tmp, { recursive: true, force: true });
}
if (failures) {
  console.log(`memory page: ${failures} check(s) FAILED`);
  process.exit(1);
}
console.log("memory page: all checks passed");
