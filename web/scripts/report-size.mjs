// Prints the gzipped size of the JavaScript the browser loads before the first screen:
// the entry script and every chunk index.html preloads. Lazy tab chunks are listed apart.
// Exits 1 when the initial JavaScript is over the budget (150 KB gzipped, issue 6).
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BUDGET_KB = 150;
const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist");
const html = readFileSync(path.join(dist, "index.html"), "utf8");

const initial = new Set();
for (const match of html.matchAll(/<(?:script|link)\b[^>]*?(?:src|href)="\/?([^"]+\.js)"[^>]*>/g)) initial.add(match[1]);

const gzipKb = (file) => gzipSync(readFileSync(path.join(dist, file)), { level: 9 }).length / 1024;
const assets = readdirSync(path.join(dist, "assets")).filter((name) => name.endsWith(".js")).map((name) => `assets/${name}`);

let total = 0;
console.log("Initial JavaScript (gzipped):");
for (const file of initial) {
  const kb = gzipKb(file);
  total += kb;
  console.log(`  ${file.padEnd(44)} ${kb.toFixed(1).padStart(7)} KB`);
}
console.log("Lazy chunks (gzipped):");
for (const file of assets.filter((f) => !initial.has(f))) console.log(`  ${file.padEnd(44)} ${gzipKb(file).toFixed(1).padStart(7)} KB`);
console.log(`Initial JavaScript: ${total.toFixed(1)} KB gzipped (budget ${BUDGET_KB} KB)`);
if (total > BUDGET_KB) {
  console.error(`Over budget by ${(total - BUDGET_KB).toFixed(1)} KB.`);
  process.exit(1);
}
