// The browser end-to-end scenario of issue 6, driven by playwright-core in Debian's headless
// Chromium (never a browser that Playwright downloads: the machine reaches only the registries).
// tests/it/browser_e2e.rs starts the real server, runs this script against it and asserts on the
// JSON it writes; this script also fails (exit 1) on the first broken step, naming it.
//
// Usage: node run.mjs --base-url http://127.0.0.1:PORT --fixtures DIR --artifacts DIR --result FILE
//                    --expected-wards N
//
// Scenario: open the page (with 16 KiB upload chunks); upload the Kano CSV and ward shapefile
// through the form over a throttled link (Chromium's network emulation: 230 kbit/s both ways,
// 150 ms latency), in chunks, with one chunk's connection reset and the link offline for a
// while (the page retries with backoff and resumes from what the server holds); run the risk
// analysis from its button; upload population through the page's form; plan ITN for 120000
// nets; check the map frame draws the 66 wards; build the analysis package and download it;
// check the zip's entries; screenshots of the page (laptop and phone) and of the map. Any
// Content-Security-Policy violation, page error or failed request fails the run.

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

const STEP_TIMEOUT_MS = 45_000;
const TOTAL_TIMEOUT_MS = 150_000;

const TOTAL_NETS = 120000;

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) {
      throw new Error(`bad argument ${argv[i]}`);
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const key of ["base-url", "fixtures", "artifacts", "result", "expected-wards"]) {
    if (!out[key]) throw new Error(`missing --${key}`);
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const base = args["base-url"].replace(/\/$/, "");
const fixtures = args.fixtures;
const artifacts = args.artifacts;
const EXPECTED_WARDS = Number(args["expected-wards"]);
mkdirSync(artifacts, { recursive: true });

const result = {
  ok: false,
  failed_step: null,
  error: null,
  problems: [],
  steps: [],
  upload_text: null,
  analysis_text: null,
  population_text: null,
  itn_text: null,
  tooltip_text: null,
  map_tabs: [],
  ward_shapes: {},
  map_csp: null,
  zip_entries: [],
  zip_bytes: 0,
  screenshots: [],
  csp_violations: [],
  page_errors: [],
  console_errors: [],
  failed_requests: [],
  chunk_failures: [],
  chunk_requests: 0,
  chunk_statuses: 0,
  upload_ms: null,
  upload_progress_seen: [],
  browser_version: null,
};

let currentStep = "start";
const t0 = Date.now();
function log(msg) {
  process.stderr.write(`[e2e ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
}

async function step(name, body) {
  currentStep = name;
  const start = Date.now();
  log(`step: ${name}`);
  await body();
  result.steps.push({ name, ms: Date.now() - start });
}

function writeResult() {
  writeFileSync(args.result, JSON.stringify(result, null, 2));
}

// The whole run is bounded even if the browser hangs somewhere Playwright does not time out.
const watchdog = setTimeout(() => {
  result.failed_step = currentStep;
  result.error = `the scenario did not finish within ${TOTAL_TIMEOUT_MS / 1000} s`;
  writeResult();
  log(result.error);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

// The central directory of a zip: every entry's name, each checked against its local header.
function zipEntries(buf) {
  const EOCD = 0x06054b50;
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === EOCD) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error("not a zip: no end-of-central-directory record");
  const count = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  const names = [];
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry ${n}`);
    const nameLen = buf.readUInt16LE(at + 28);
    const extraLen = buf.readUInt16LE(at + 30);
    const commentLen = buf.readUInt16LE(at + 32);
    const local = buf.readUInt32LE(at + 42);
    if (buf.readUInt32LE(local) !== 0x04034b50) throw new Error(`entry ${n}: bad local header`);
    names.push(buf.toString("utf8", at + 46, at + 46 + nameLen));
    at += 46 + nameLen + extraLen + commentLen;
  }
  return names;
}

// Reports CSP violations from every frame (the page and the map frames) to the test. It is
// injected through the DevTools protocol, which the page's CSP does not govern.
function cspProbe() {
  document.addEventListener("securitypolicyviolation", (e) => {
    const report = window.__e2eReportCsp;
    if (typeof report === "function") {
      report({
        frame: location.href,
        directive: e.violatedDirective,
        blocked: e.blockedURI,
        sample: e.sample,
        source: e.sourceFile,
        line: e.lineNumber,
      });
    }
  });
}

let browser;
let userDataDir;
let page;
try {
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  // A fresh, empty profile every run; the flags keep Chromium off the network it cannot reach.
  userDataDir = mkdtempSync(join(tmpdir(), "prefork-e2e-profile-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    chromiumSandbox: false,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    timeout: STEP_TIMEOUT_MS,
  });
  browser = context;
  result.browser_version = context.browser()?.version() ?? null;
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  await context.exposeBinding("__e2eReportCsp", (_source, v) => {
    result.csp_violations.push(v);
    log(`CSP violation: ${JSON.stringify(v)}`);
  });
  await context.addInitScript(cspProbe);

  // Listeners on the context see every page (the phone-sized one too) and every frame.
  context.on("console", (msg) => {
    const text = msg.text();
    if (/content security policy/i.test(text)) {
      result.csp_violations.push({ console: text, url: msg.location().url });
    }
    if (msg.type() === "error") result.console_errors.push(text);
    log(`console.${msg.type()}: ${text}`);
  });
  context.on("weberror", (webError) => {
    const err = webError.error();
    result.page_errors.push(String(err));
    log(`page error: ${err}`);
  });
  context.on("requestfailed", (req) => {
    // A download the browser hands over to Playwright reports as aborted; it is not a failure.
    if (req.failure()?.errorText === "net::ERR_ABORTED" && req.url().includes("/export/download/")) return;
    // The upload step breaks chunk requests on purpose (reset, offline); the page must recover.
    if (req.url().includes("/upload/")) {
      result.chunk_failures.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
      return;
    }
    result.failed_requests.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
  });
  context.on("response", (res) => {
    if (res.status() >= 400) result.failed_requests.push(`${res.request().method()} ${res.url()}: HTTP ${res.status()}`);
  });
  page = context.pages()[0] ?? (await context.newPage());

  const statusOn = (key) => page.locator(`#status-list li[data-key="${key}"].on`);
  const frame = page.frameLocator("#map-frame");

  await step("open the page", async () => {
    const res = await page.goto(`${base}/?chunk_kib=16`);
    if (!res || res.status() !== 200) throw new Error(`GET / answered ${res && res.status()}`);
    if (!res.headers()["content-security-policy"]) throw new Error("GET / has no Content-Security-Policy");
    // Looking at the page mints no session: no cookie; the status line says "-" until the upload.
    if (res.headers()["set-cookie"]) throw new Error(`GET / set a cookie: ${res.headers()["set-cookie"]}`);
    await page.waitForFunction(() => document.getElementById("worker-pid").textContent !== "-");
    const sid = await page.locator("#session-id").innerText();
    if (sid !== "-") throw new Error(`a session before any upload: ${sid}`);
  });

  await step("a first chat message mints the session", async () => {
    await page.fill("#chat-input", "what can you do?");
    await page.press("#chat-input", "Enter");
    await page.waitForFunction(() => /^[0-9a-f]{32}$/.test(document.getElementById("session-id").textContent));
    await page.waitForFunction(() => {
      const bots = document.querySelectorAll("#chat-log .msg.bot");
      const last = bots[bots.length - 1];
      return last && last.textContent && last.textContent !== "..." && !last.classList.contains("error");
    });
    result.session_before_upload = await page.locator("#session-id").innerText();
  });

  await step("upload the Kano CSV and shapefile in chunks over a throttled, dropping link", async () => {
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    const link = { offline: false, latency: 150, downloadThroughput: 230_000 / 8, uploadThroughput: 230_000 / 8 };
    await cdp.send("Network.emulateNetworkConditions", link);
    let chunkNo = 0;
    await page.route("**/upload/**", async (route) => {
      const url = route.request().url();
      if (url.includes("/upload/status")) result.chunk_statuses++;
      if (!url.includes("/upload/chunk")) return route.continue();
      chunkNo++;
      result.chunk_requests = chunkNo;
      // The 3rd chunk request: the connection is reset (the chunk never arrives).
      if (chunkNo === 3) return route.abort("connectionreset");
      // After the 5th: the link goes offline for 3 s (the page backs off, then resumes).
      if (chunkNo === 5) {
        await route.continue();
        await cdp.send("Network.emulateNetworkConditions", { ...link, offline: true });
        setTimeout(() => cdp.send("Network.emulateNetworkConditions", link).catch(() => {}), 3000);
        return;
      }
      return route.continue();
    });
    const seen = new Set();
    const sampler = setInterval(() => {
      page.evaluate(() => document.getElementById("upload-progress").value).then((v) => seen.add(Math.round(v)), () => {});
    }, 100);
    const start = Date.now();
    await page.setInputFiles("#csv-file", join(fixtures, "kano", "kano_wards.csv"));
    await page.setInputFiles("#shapefile", join(fixtures, "kano", "kano_wards_shapefile.zip"));
    await page.click("#upload-button");
    await page.waitForFunction(() => /Loaded \d+ wards|failed|stopped/.test(document.getElementById("upload-result").textContent), null, { timeout: 120_000 });
    result.upload_ms = Date.now() - start;
    clearInterval(sampler);
    result.upload_progress_seen = [...seen].sort((a, b) => a - b);
    await page.unroute("**/upload/**");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await cdp.detach();
    await statusOn("data_loaded").waitFor();
    await statusOn("shapefile_loaded").waitFor();
    // The upload went to the session the chat minted.
    const sid = await page.locator("#session-id").innerText();
    if (sid !== result.session_before_upload) throw new Error(`session changed: ${result.session_before_upload} -> ${sid}`);
    result.upload_text = await page.locator("#upload-result").innerText();
    if (!/Loaded \d+ wards/.test(result.upload_text)) throw new Error(`upload said: ${result.upload_text}`);
  });

  await step("run the risk analysis", async () => {
    await page.locator("#analysis-button:enabled").click();
    await statusOn("analysis_complete").waitFor();
    await page.waitForFunction(() => /Analysis complete|already done/.test(document.getElementById("action-result").textContent));
    result.analysis_text = await page.locator("#action-result").innerText();
    await page.locator("#map-tabs button").first().waitFor();
  });

  await step("upload population through the page", async () => {
    const pop = join(fixtures, "reference", "kano", "kano_auto_population_input.csv");
    await page.setInputFiles("#population-file", pop);
    await page.click("#population-button");
    await statusOn("population_loaded").waitFor();
    await page.waitForFunction(() => /Population loaded/.test(document.getElementById("action-result").textContent));
    result.population_text = await page.locator("#action-result").innerText();
  });

  await step(`plan ITN for ${TOTAL_NETS} nets`, async () => {
    await page.fill("#total-nets", String(TOTAL_NETS));
    await page.locator("#itn-button:enabled").click();
    await statusOn("itn_complete").waitFor();
    await page.locator("#map-tabs button.active", { hasText: "ITN plan" }).waitFor();
    await page.waitForFunction(() => /Nets allocated/.test(document.getElementById("action-result").textContent));
    result.itn_text = await page.locator("#action-result").innerText();
    const src = await page.locator("#map-frame").getAttribute("src");
    if (!src || !src.includes("itn_map_")) throw new Error(`the map frame shows ${src}, not the ITN map`);
  });

  // The map frame has finished loading the document whose URL holds `fragment` (a frame
  // locator alone could still be looking at the map it showed before).
  const frameShows = (fragment) =>
    page.waitForFunction((f) => {
      const doc = document.getElementById("map-frame").contentDocument;
      return !!doc && doc.URL.includes(f) && doc.readyState === "complete";
    }, fragment);

  const countShapes = async (label) => {
    const shapes = frame.locator("svg.map [data-i]");
    await shapes.first().waitFor();
    // Ward indices, not elements: a ward drawn as several rings must still count once.
    const wards = await shapes.evaluateAll((els) => new Set(els.map((e) => e.getAttribute("data-i"))).size);
    result.ward_shapes[label] = wards;
    // Recorded, not thrown: the rest of the scenario (and its screenshots) still says something.
    if (wards !== EXPECTED_WARDS) result.problems.push(`the ${label} map draws ${wards} wards, expected ${EXPECTED_WARDS}`);
  };

  await step("the ITN map draws every ward", async () => {
    const src = await page.locator("#map-frame").getAttribute("src");
    const mapResponse = await page.request.get(new URL(src, base).href);
    result.map_csp = mapResponse.headers()["content-security-policy"] ?? null;
    if (!result.map_csp) throw new Error("the map is served without a Content-Security-Policy");
    await frameShows("/itn_map_");
    await countShapes("itn");
  });

  await step("screenshots", async () => {
    const pageShot = join(artifacts, "e2e-page.png");
    await page.screenshot({ path: pageShot, fullPage: true });
    const mapShot = join(artifacts, "e2e-itn-map.png");
    await page.locator("#map-frame").screenshot({ path: mapShot });
    result.screenshots.push(pageShot, mapShot);
  });

  await step("a ward's tooltip shows its plan", async () => {
    // The tap tooltip comes from the map's own inline script, which runs only if the CSP's hash
    // admits it: a blocked script leaves the tooltip hidden.
    await frame.locator("svg.map [data-i]").first().dispatchEvent("click");
    const tip = frame.locator("#tip");
    await tip.waitFor({ state: "visible", timeout: 5000 });
    const tipText = await tip.innerText();
    if (!/Nets allocated/.test(tipText)) throw new Error(`the ward tooltip says: ${tipText}`);
    result.tooltip_text = tipText;
  });

  await step("the composite map draws every ward", async () => {
    const tab = page.locator("#map-tabs").getByRole("button", { name: "Vulnerability map (composite)", exact: true });
    await tab.click();
    await frameShows("/vulnerability_map_composite_");
    await countShapes("composite");
    const shot = join(artifacts, "e2e-composite-map.png");
    await page.locator("#map-frame").screenshot({ path: shot });
    result.screenshots.push(shot);
    result.map_tabs = await page.locator("#map-tabs button").allInnerTexts();
  });

  await step("build and download the analysis package", async () => {
    await page.click("#report-button");
    const link = page.locator("#download-list a[href*='/export/download/']").first();
    await link.waitFor();
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    const failure = await download.failure();
    if (failure) throw new Error(`download failed: ${failure}`);
    const zipPath = join(artifacts, "e2e-analysis-package.zip");
    await download.saveAs(zipPath);
    const bytes = readFileSync(zipPath);
    result.zip_bytes = bytes.length;
    result.zip_entries = zipEntries(bytes);
  });

  // The second entry: a facility export, the guided choices, the ward TPR and its map. Last,
  // because joining TPR into the ward data starts a new generation (the analysis reruns).
  await step("facility export: upload, choose, calculate TPR", async () => {
    await page.setInputFiles("#tpr-file", join(fixtures, "tpr", "kano_nmep_2021_2024.csv"));
    await page.click("#tpr-upload-button");
    await page.locator("#tpr-form:not([hidden])").waitFor();
    await page.waitForFunction(() => /facility-months of 198 facilities/.test(document.getElementById("tpr-result").textContent));
    result.tpr_upload_text = await page.locator("#tpr-result").innerText();
    await page.selectOption("#tpr-level", "primary");
    await page.selectOption("#tpr-age", "u5");
    await page.selectOption("#tpr-method", "rdt");
    await page.waitForFunction(() => /rdt: \d+ wards with a TPR/.test(document.getElementById("tpr-options").textContent));
    await page.locator("#tpr-calculate-button:enabled").click();
    await page.waitForFunction(() => /Test positivity rate, %, under 5 years, RDT, primary facilities/.test(document.getElementById("tpr-result").textContent));
    result.tpr_text = await page.locator("#tpr-result").innerText();
    await page.locator("#map-tabs button.active", { hasText: "tpr map" }).waitFor();
    await frameShows("/tpr_map.html");
    await countShapes("tpr");
    const shot = join(artifacts, "e2e-tpr-map.png");
    await page.locator("#map-frame").screenshot({ path: shot });
    result.screenshots.push(shot);
  });

  await step("phone-sized page", async () => {
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${base}/`);
    await phone.locator("#status-list li.on").first().waitFor();
    const shot = join(artifacts, "e2e-page-phone.png");
    await phone.screenshot({ path: shot, fullPage: true });
    result.screenshots.push(shot);
    await phone.close();
  });

  // An officer with only the facility export and the ward shapefile, in a new tab of a browser
  // that holds no session (cookies cleared, so the page starts a new one): the ward TPR becomes
  // the ward data, drawn on every shapefile ward. Last, because it drops the first session's
  // cookie.
  await step("facility export with a ward shapefile and no ward data", async () => {
    await context.clearCookies();
    const tab = await context.newPage();
    await tab.goto(`${base}/`);
    await tab.setInputFiles("#tpr-file", join(fixtures, "tpr", "kano_nmep_2021_2024.csv"));
    await tab.setInputFiles("#tpr-shapefile", join(fixtures, "kano", "kano_wards_shapefile.zip"));
    await tab.click("#tpr-upload-button");
    await tab.waitForFunction(() => /Ward shapefile: \d+ of 67 wards of the export matched/.test(document.getElementById("tpr-result").textContent));
    result.tpr_shapefile_upload_text = await tab.locator("#tpr-result").innerText();
    await tab.locator("#tpr-form:not([hidden])").waitFor();
    await tab.locator("#tpr-calculate-button:enabled").click();
    await tab.waitForFunction(() => /The ward TPR is now your ward data/.test(document.getElementById("tpr-result").textContent));
    result.tpr_ward_table_text = await tab.locator("#tpr-result").innerText();
    await tab.locator('#status-list li[data-key="data_loaded"].on').waitFor();
    await tab.locator('#status-list li[data-key="shapefile_loaded"].on').waitFor();
    const shapes = tab.frameLocator("#map-frame").locator("svg.map [data-i]");
    await shapes.first().waitFor();
    const wards = await shapes.evaluateAll((els) => new Set(els.map((e) => e.getAttribute("data-i"))).size);
    result.ward_shapes.tpr_shapefile_only = wards;
    if (wards !== EXPECTED_WARDS) result.problems.push(`the TPR map of the shapefile-only session draws ${wards} wards, expected ${EXPECTED_WARDS}`);
    const shot = join(artifacts, "e2e-tpr-shapefile-only.png");
    await tab.screenshot({ path: shot, fullPage: true });
    result.screenshots.push(shot);
    await tab.close();
  });

  currentStep = "checks";
  if (result.problems.length) throw new Error(result.problems.join("; "));
  if (result.csp_violations.length) throw new Error(`${result.csp_violations.length} CSP violation(s)`);
  if (result.page_errors.length) throw new Error(`page errors: ${result.page_errors.join("; ")}`);
  if (result.failed_requests.length) throw new Error(`failed requests: ${result.failed_requests.join("; ")}`);
  result.ok = true;
} catch (err) {
  result.failed_step = currentStep;
  result.error = String(err && err.stack ? err.stack : err);
  log(`FAILED at "${currentStep}": ${err}`);
  if (page) {
    // What the page showed when the step failed, for whoever reads the CI artifacts.
    const shot = join(artifacts, "e2e-failure.png");
    await page.screenshot({ path: shot, fullPage: true, timeout: 10_000 }).then(
      () => result.screenshots.push(shot),
      (e) => log(`no failure screenshot: ${e}`),
    );
  }
} finally {
  clearTimeout(watchdog);
  if (browser) await browser.close().catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  writeResult();
  log(result.ok ? "scenario passed" : "scenario failed");
}
process.exit(result.ok ? 0 : 1);
