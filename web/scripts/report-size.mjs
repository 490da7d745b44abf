// Prints the gzipped size of the JavaScript the browser loads before the first screen:
// the entry script and every chunk index.html preloads. Lazy tab chunks are listed apart.
// Exits 1 when the initial JavaScript is over the budget.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { INITIAL_BUDGET_KB, measureDist } from "./initial-javascript.mjs";

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist");
const { initial, lazy } = measureDist(dist);
const line = ({ file, kb }) => `  ${file.padEnd(44)} ${kb.toFixed(1).padStart(7)} KB`;

console.log("Initial JavaScript (gzipped):");
for (const chunk of initial) console.log(line(chunk));
console.log("Lazy chunks (gzipped):");
for (const chunk of lazy) console.log(line(chunk));
const total = initial.reduce((sum, chunk) => sum + chunk.kb, 0);
console.log(`Initial JavaScript: ${total.toFixed(1)} KB gzipped (budget ${INITIAL_BUDGET_KB} KB)`);
if (total > INITIAL_BUDGET_KB) {
  console.error(`Over budget by ${(total - INITIAL_BUDGET_KB).toFixed(1)} KB.`);
  process.exit(1);
}
