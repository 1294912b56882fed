// Opens hlsvault's status page in Debian's Chromium and prints as JSON
// where each recorded stretch and gap of the timeline is drawn (its data
// attributes and its box on the page), after saving a screenshot of the
// page to SHOT; then clicks the first recorded stretch and reports
// whether the page's player played it (hls.js).
//
// usage: node timeline.mjs URL SHOT

import { launch } from './chromium.mjs';

const [url, shot] = process.argv.slice(2);
if (!url || !shot) {
  console.error('usage: node timeline.mjs URL SHOT');
  process.exit(2);
}
const browser = await launch();
let outcome;
try {
  const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await tab.goto(url);
  const shapes = await tab.evaluate(() =>
    [...document.querySelectorAll('svg.timeline rect.recorded, svg.timeline rect.gap')].map((r) => {
      const box = r.getBoundingClientRect();
      const row = r.closest('svg').getBoundingClientRect();
      return {
        kind: r.getAttribute('class'),
        stream: r.closest('svg').dataset.stream,
        start: r.dataset.start,
        end: r.dataset.end,
        cause: r.dataset.cause ?? null,
        x: box.x - row.x,
        width: box.width,
        rowWidth: row.width,
        // Where to look in the screenshot: the middle of the shape.
        cx: Math.round(box.x + box.width / 2),
        cy: Math.round(box.y + box.height / 2),
      };
    }),
  );
  await tab.screenshot({ path: shot });
  await tab.click('svg.timeline rect.recorded');
  const played = await tab.waitForFunction(
    () => {
      const v = document.getElementById('player');
      return (v.currentTime > 1 || v.ended || v.error) && {
        currentTime: v.currentTime,
        ended: v.ended,
        error: v.error && v.error.code,
        hlsJs: typeof window.Hls === 'function',
        playing: document.getElementById('playing').textContent,
      };
    },
    null,
    { timeout: 60_000 },
  );
  outcome = { shapes, played: await played.jsonValue() };
} finally {
  await browser.close();
}
console.log(JSON.stringify(outcome));
