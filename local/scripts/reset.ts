/**
 * `npm run reset`: stops the local databases and wipes `.local/` (or LOCAL_STATE_DIR), saying
 * what it removed; data directories kept under LOCAL_POSTGRES_ROOT for this folder (a clone
 * the postgres user cannot enter) go with it.
 */
import { existsSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { localStateDir, repoRoot } from "../shared/paths.ts";
import { devClusterOptions, stopCluster, testClusterOptions } from "../stack/postgres.ts";
import { relocatedDataDirs } from "../stack/postgres-placement.ts";

async function main(): Promise<void> {
  // The test and bench clusters live in the repository's .local/ whatever LOCAL_STATE_DIR
  // says; they go only with that one.
  const isRepoState = localStateDir === path.join(repoRoot, ".local");
  const testClusters = isRepoState
    ? (await readdir(localStateDir).catch(() => [] as string[]))
        .filter((name) => /^(test|bench)-postgres-\d+$/.test(name))
        .map((name) => ({ ...testClusterOptions(), dataDir: path.join(localStateDir, name) }))
    : [];
  const relocated = await relocatedDataDirs(localStateDir);
  const clusters = [
    devClusterOptions(),
    ...(isRepoState ? [testClusterOptions()] : []),
    ...testClusters,
    ...relocated.map((r) => ({ ...devClusterOptions(), dataDir: r.origin })),
  ];
  for (const cluster of clusters) await stopCluster(cluster).catch(() => false);

  const removed: string[] = [];
  for (const r of relocated) {
    await rm(r.dir, { recursive: true, force: true });
    await rm(`${r.dir}.origin`, { force: true });
    removed.push(r.dir);
  }
  if (existsSync(localStateDir)) {
    const entries = await readdir(localStateDir);
    await rm(localStateDir, { recursive: true, force: true });
    removed.push(`${localStateDir}${entries.length ? ` (${entries.join(", ")})` : ""}`);
  }
  console.log(removed.length ? `Removed ${removed.join("; ")}.` : `Nothing to remove: ${localStateDir} does not exist.`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
