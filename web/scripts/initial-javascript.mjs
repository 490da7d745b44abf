// What the browser downloads before the first screen, measured on a built web/dist: the entry
// script and every chunk index.html preloads, gzipped (level 9, as a CDN would serve them).
// Shared by `npm run build`'s size report and the vitest budget test, so both measure alike.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";

/** The initial JavaScript's budget in KB gzipped (issue 6; issue 15 keeps it). */
export const INITIAL_BUDGET_KB = 150;

/**
 * The built files' gzipped sizes in KB: `initial` (the first screen's scripts, in index.html
 * order) and `lazy` (every other chunk), each as `{ file, kb, text }`.
 */
export function measureDist(dist) {
  const html = readFileSync(path.join(dist, "index.html"), "utf8");
  const initialFiles = new Set();
  for (const match of html.matchAll(/<(?:script|link)\b[^>]*?(?:src|href)="\/?([^"]+\.js)"[^>]*>/g)) initialFiles.add(match[1]);
  const describe = (file) => {
    const text = readFileSync(path.join(dist, file), "utf8");
    return { file, kb: gzipSync(text, { level: 9 }).length / 1024, text };
  };
  const assets = readdirSync(path.join(dist, "assets")).filter((name) => name.endsWith(".js")).map((name) => `assets/${name}`);
  return {
    initial: [...initialFiles].map(describe),
    lazy: assets.filter((file) => !initialFiles.has(file)).map(describe),
  };
}
