// Drives headless Chromium over the DevTools protocol (--remote-debugging-pipe, no npm
// packages): opens the relay's /status page, waits until it has polled the relay `samples`
// times with traffic on TRACK, checks that the bandwidth plot shows that traffic and that its
// pixels change between two polls, and saves a screenshot.
//   node status_page.js CHROMIUM URL TRACK SCREENSHOT.png
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

const [chromium, url, track, screenshot] = process.argv.slice(2);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "moq-status-chromium-"));
const browser = spawn(chromium, ["--headless", "--no-sandbox", "--disable-gpu",
  "--no-first-run", "--remote-debugging-pipe", `--user-data-dir=${profile}`,
  "--window-size=1000,900", "about:blank"],
  { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"], detached: true });
let stderr = "";
browser.stdio[2].on("data", (d) => { stderr += d; });

let nextId = 1, buffer = "";
const pending = new Map();
browser.stdio[4].on("data", (chunk) => {
  buffer += chunk;
  let end;
  while ((end = buffer.indexOf("\0")) >= 0) {
    const msg = JSON.parse(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
    const p = pending.get(msg.id);
    if (!p) continue;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(JSON.stringify(msg.error))); else p.resolve(msg.result);
  }
});
function send(method, params = {}, sessionId) {
  const id = nextId++;
  browser.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + "\0");
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

// Chromium's helper processes write to the profile after the browser itself is gone: the
// whole process group goes, and a profile that still cannot be removed is only reported.
function finish(code, message) {
  if (message) console.log(message);
  browser.once("exit", () => {
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (e) {
      console.error(`could not remove ${profile}: ${e.code}`);
    }
    process.exit(code);
  });
  try {
    process.kill(-browser.pid, "SIGKILL");
  } catch {
    browser.kill("SIGKILL");
  }
}
let first = null, last = null;
const deadline = setTimeout(() => finish(1, "timed out; the page showed " + JSON.stringify(last) +
  "\nchromium said: " + stderr.slice(-1000)), 60000);

async function main() {
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const page = (method, params) => send(method, params, sessionId);
  const evaluate = async (expr) =>
    (await page("Runtime.evaluate", { expression: expr, returnByValue: true })).result.value;
  await page("Page.enable");
  await page("Page.navigate", { url });
  // Wait on the page's own state: polls done, traffic seen on the track.
  const probe = `(() => {
    const s = window.moqStatus;
    if (!s) return null;
    const key = [...s.tracks.keys()].find((k) => k.endsWith("/" + ${JSON.stringify(track)}));
    const series = key ? s.tracks.get(key).values : [];
    const c = document.getElementById("bandwidth-plot");
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let hash = 0, ink = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i + 3]) { ink++; hash = (hash * 31 + px[i] + px[i+1] * 7 + px[i+2] * 13 + i) % 1000000007; }
    return { updates: s.updates, errors: s.errors, key, series, ink, hash,
             sessions: s.sessions.at(-1), broadcasts: s.broadcasts.at(-1),
             rows: document.querySelectorAll("#tracks tbody tr").length,
             summary: document.getElementById("summary").textContent,
             error: document.getElementById("error").textContent };
  })()`;
  for (;;) {
    last = await evaluate(probe);
    const moving = last && last.series.filter((v) => v > 0).length >= 2;
    if (moving && !first) first = last;
    if (first && last.updates > first.updates && last.hash !== first.hash) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const png = await page("Page.captureScreenshot", { format: "png" });
  fs.writeFileSync(screenshot, Buffer.from(png.data, "base64"));
  console.log(JSON.stringify({ first, last }));
  clearTimeout(deadline);
  finish(0);
}
main().catch((e) => finish(1, String(e.stack || e) + "\nchromium said: " + stderr.slice(-2000)));
