// Plays an HLS playlist with hls.js, or a file in a plain <video>
// (--plain), in Debian's Chromium (driven by playwright-core; no browser
// download) and prints what happened as JSON: whether it played to the
// end, the media duration and position, decoded frames, the media time of
// the first picture shown, fragments loaded, errors and (hls.js) the
// playlist's date ranges as hls.js parsed them.
//
// usage: node play.mjs URL [--plain]
//
// The player page comes from a loopback server of its own (another port,
// so another origin): the playlist and segments are fetched cross-origin,
// and CORS is part of what is tested. (A page Playwright answers itself
// counts as public, and Chromium then refuses loopback requests.)

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { launch } from './chromium.mjs';

const playlist = process.argv[2];
const plain = process.argv[3] === '--plain';
if (!playlist) {
  console.error('usage: node play.mjs URL [--plain]');
  process.exit(2);
}
const hlsJs = readFileSync(new URL('./node_modules/hls.js/dist/hls.min.js', import.meta.url));
const common = `
  window.result = { ended: false, fatal: null, errors: [], fragments: 0, firstFrame: null };
  const v = document.getElementById('v');
  v.addEventListener('ended', () => { result.ended = true; });
  v.requestVideoFrameCallback((_, m) => { result.firstFrame = m.mediaTime; });`;
const plainPage = `<!doctype html><meta charset="utf-8">
<video id="v" muted playsinline></video>
<script>${common}
  v.addEventListener('error', () => { result.fatal = 'media error ' + v.error.code + ': ' + v.error.message; });
  v.src = ${JSON.stringify(playlist)};
  v.play().catch((e) => { result.fatal = 'play() refused: ' + e; });
</script>`;
const page = plain ? plainPage : `<!doctype html><meta charset="utf-8">
<video id="v" muted playsinline></video>
<script src="/hls.min.js"></script>
<script>${common}
  const hls = new Hls();
  hls.on(Hls.Events.ERROR, (_, d) => {
    result.errors.push(d.details + (d.fatal ? ' (fatal)' : ''));
    if (d.fatal) result.fatal = d.details;
  });
  hls.on(Hls.Events.FRAG_BUFFERED, () => { result.fragments += 1; });
  hls.on(Hls.Events.LEVEL_LOADED, (_, d) => {
    result.dateRanges = Object.values(d.details.dateRanges).map((r) => ({
      id: r.id,
      start: r.startDate.toISOString(),
      duration: r.duration,
      plannedDuration: r.plannedDuration,
      valid: r.isValid,
      attributes: Object.keys(r.attr),
    }));
  });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    v.play().catch((e) => { result.fatal = 'play() refused: ' + e; });
  });
  hls.loadSource(${JSON.stringify(playlist)});
  hls.attachMedia(v);
</script>`;

const server = createServer((req, res) => {
  if (req.url === '/hls.min.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(hlsJs);
  } else {
    res.writeHead(200, { 'content-type': 'text/html' }).end(page);
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const origin = `http://localhost:${server.address().port}/`;

const browser = await launch();
let outcome;
try {
  const tab = await browser.newPage();
  await tab.goto(origin);
  await tab.waitForFunction(() => window.result.ended || window.result.fatal, null, {
    timeout: 120_000,
  });
  outcome = await tab.evaluate(() => {
    const v = document.getElementById('v');
    const q = v.getVideoPlaybackQuality();
    return {
      ...window.result,
      duration: v.duration,
      currentTime: v.currentTime,
      frames: q.totalVideoFrames,
      width: v.videoWidth,
      height: v.videoHeight,
    };
  });
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(outcome));
