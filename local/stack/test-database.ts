/**
 * The throwaway databases that `npm test` and `npm run bench` run against: a fresh database
 * on a cluster of their own (never the developer's dev data), migrated and seeded exactly like
 * a real project, with pgTAP available. TEST_DATABASE_URL points them at another server
 * (BENCH_DATABASE_URL, for the benchmark only, wins over it).
 */
import { prepareDatabase, recreateDatabase } from "./database.ts";
import { createPgtapExtension, installPgtapFiles } from "./pgtap.ts";
import { benchClusterOptions, startCluster, stopCluster, testClusterOptions, type ClusterOptions } from "./postgres.ts";

export interface TestDatabase {
  url: string;
  /** Stops what setup started (nothing when an external URL was given). */
  close(): Promise<void>;
}

/** A fresh database on the test cluster (relaxed durability), for `npm test`. */
export function setUpTestDatabase(name: string): Promise<TestDatabase> {
  return setUpThrowawayDatabase(name, testClusterOptions(), process.env.TEST_DATABASE_URL);
}

/** A fresh database on the bench cluster (production durability), for `npm run bench`. */
export function setUpBenchDatabase(name: string): Promise<TestDatabase> {
  return setUpThrowawayDatabase(name, benchClusterOptions(), process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL);
}

async function setUpThrowawayDatabase(name: string, cluster: ClusterOptions, external: string | undefined): Promise<TestDatabase> {
  if (external) {
    await prepareDatabase(external);
    await createPgtapExtension(external);
    return { url: external, close: async () => {} };
  }
  await installPgtapFiles();
  const adminUrl = await startCluster(cluster);
  const url = await recreateDatabase(adminUrl, name);
  await prepareDatabase(url, { forceBootstrap: true });
  await createPgtapExtension(url);
  return {
    url,
    close: async () => {
      if (process.env.KEEP_TEST_DATABASE !== "1") await stopCluster(cluster);
    },
  };
}
