/** `npm run reset`: stops the local databases and wipes `.local/`, saying what it removed. */
import { existsSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { localStateDir } from "../shared/paths.ts";
import { devClusterOptions, stopCluster, testClusterOptions } from "../stack/postgres.ts";

async function main(): Promise<void> {
  await stopCluster(devClusterOptions()).catch(() => false);
  await stopCluster(testClusterOptions()).catch(() => false);
  if (!existsSync(localStateDir)) {
    console.log(`Nothing to remove: ${localStateDir} does not exist.`);
    return;
  }
  const entries = await readdir(localStateDir);
  await rm(localStateDir, { recursive: true, force: true });
  console.log(`Removed ${localStateDir}${entries.length ? ` (${entries.map((e) => path.join(".local", e)).join(", ")})` : ""}.`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
