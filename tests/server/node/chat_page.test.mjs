// The chat page at / in Debian's Chromium (headless, loopback only), through playwright-core:
// type a message and see the answer stream in with tokens/s, then stop a long answer with the
// Stop button and check that the server cancelled it. A screenshot is left in XTILE_TEST_TMP.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const url = process.env.XTILE_URL;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--disable-dev-shm-usage",
         "--no-first-run", "--mute-audio", "--metrics-recording-only",
         "--disable-component-update", "--disable-domain-reliability"],
});
after(() => browser.close());

async function metric(name) {
  const text = await (await fetch(url + "/metrics")).text();
  const m = text.match(new RegExp("\\nxtile:" + name + " ([-0-9.e+]+)\\n"));
  return m ? Number(m[1]) : NaN;
}

test("type a message, see the streamed answer, stop a generation", { timeout: 120000 }, async () => {
  const page = await browser.newPage();
  // Loopback only: any request elsewhere fails the test.
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(url)) foreign.push(r.url()); });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url + "/");
  await page.waitForFunction(() => document.getElementById("model").textContent.includes(".gguf"));

  // A short answer, streamed to the end.
  await page.click("summary");  // the settings
  await page.fill("#max-tokens", "24");
  await page.fill("#input", "Hello there");
  await page.press("#input", "Enter");
  await page.waitForSelector(".msg.user");
  await page.waitForFunction(() => {
    const c = document.querySelector(".msg.assistant .content");
    return c && c.textContent.length > 0;
  });
  await page.waitForSelector("#stop", { state: "hidden", timeout: 60000 });
  assert.match(await page.textContent("#stats"), /^24 tokens, [0-9.]+ tokens\/s$/);
  assert.equal(await page.locator(".msg.assistant").count(), 1);
  assert.ok((await page.textContent(".msg.assistant .content")).length > 0);

  // A long answer, stopped while it streams.
  const cancelled = await metric("requests_cancelled_total");
  await page.fill("#max-tokens", "4000");
  await page.fill("#input", "Tell me more");
  await page.click("#send");
  await page.waitForSelector("#stop", { state: "visible" });
  const second = page.locator(".msg.assistant").nth(1);
  await page.waitForFunction(() => {
    const all = document.querySelectorAll(".msg.assistant .content");
    return all.length === 2 && all[1].textContent.length > 40;
  });
  await page.click("#stop");
  await page.waitForSelector("#stop", { state: "hidden" });
  assert.equal(await second.locator(".meta").textContent(), "stopped");
  const len = (await second.locator(".content").textContent()).length;
  await page.waitForTimeout(500);
  assert.equal((await second.locator(".content").textContent()).length, len);  // no more text
  // The server saw the client go and cancelled the request.
  for (let i = 0; i < 100 && (await metric("requests_cancelled_total")) <= cancelled; i++)
    await page.waitForTimeout(100);
  assert.equal(await metric("requests_cancelled_total"), cancelled + 1);
  assert.equal(await metric("requests_processing"), 0);
  await page.screenshot({ path: (process.env.XTILE_TEST_TMP || "/tmp") + "/chat_page.png" });
  assert.deepEqual(foreign, []);
  assert.deepEqual(errors, []);
});
