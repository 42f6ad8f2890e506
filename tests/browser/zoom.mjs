// Drives a real headless Chromium over a report page and prints what it saw
// as one JSON line, for tests/it/html.rs to judge:
//   node tests/browser/zoom.mjs PAGE.html [--no-script]
// Every request other than the page itself is refused and counted.
import { chromium } from "playwright-core";

const [page_path, flag] = process.argv.slice(2);
const noScript = flag === "--no-script";
const url = "file://" + page_path;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const out = { requests: [], errors: [] };
try {
  const context = await browser.newContext({ javaScriptEnabled: !noScript, viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  await context.route("**/*", (route) => {
    const u = route.request().url();
    if (u === url) return route.continue();
    out.requests.push(u);
    return route.abort();
  });
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
  await page.goto(url, { waitUntil: "load" });

  // What a reader without scripts sees: the static charts.
  out.svgs_visible = await page.$$eval("figure > svg", (els) =>
    els.filter((e) => e.getBoundingClientRect().height > 100 && getComputedStyle(e).display !== "none").length);
  if (noScript) {
    out.charts = 0;
  } else {
    await page.waitForFunction(() => window.fdsoakCharts && window.fdsoakCharts.length > 0, null, { timeout: 15000 });
    out.charts = await page.evaluate(() => window.fdsoakCharts.map((u) => ({
      title: u.root.querySelector(".u-title") ? u.root.querySelector(".u-title").textContent : "",
      series: u.series.length - 1,
      points: u.data.slice(1).map((s) => s.filter((v) => v !== null).length),
      nonzero: u.data.slice(1).some((s) => s.some((v) => v !== null && v > 0)),
      x: [u.scales.x.min, u.scales.x.max],
      canvas: u.root.querySelector("canvas").width,
    })));
    // Zoom: drag across 30%..45% of the first chart's plot area, as a user would.
    const over = (await page.$$(".u-over"))[0];
    await over.scrollIntoViewIfNeeded();
    const box = await over.boundingBox();
    const y = box.y + box.height / 2;
    await page.mouse.move(box.x + box.width * 0.3, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.38, y, { steps: 5 });
    await page.mouse.move(box.x + box.width * 0.45, y, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(
      (before) => { const s = window.fdsoakCharts[0].scales.x; return s.min > before[0] || s.max < before[1]; },
      out.charts[0].x, { timeout: 5000 });
    out.zoomed = await page.evaluate(() => {
      const u = window.fdsoakCharts[0];
      const [lo, hi] = [u.scales.x.min, u.scales.x.max];
      const inView = u.data[0].filter((t) => t >= lo && t <= hi).length;
      return { x: [lo, hi], points_in_view: inView };
    });
    // Hover: the legend shows the values under the cursor.
    await page.mouse.move(box.x + box.width * 0.5, y);
    await page.waitForFunction(() => {
      const v = window.fdsoakCharts[0].root.querySelectorAll(".u-legend .u-value");
      return v.length > 1 && v[0].textContent !== "" && v[0].textContent !== "—";
    }, null, { timeout: 5000 });
    out.hover = await page.evaluate(() =>
      [...window.fdsoakCharts[0].root.querySelectorAll(".u-legend .u-value")].map((e) => e.textContent));
    // Double-click zooms back out.
    await page.mouse.dblclick(box.x + box.width * 0.5, y);
    out.reset = await page.evaluate(() => [window.fdsoakCharts[0].scales.x.min, window.fdsoakCharts[0].scales.x.max]);
    out.svgs_visible_with_script = await page.$$eval("figure > svg", (els) =>
      els.filter((e) => getComputedStyle(e).display !== "none").length);
  }
} catch (e) {
  out.errors.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
