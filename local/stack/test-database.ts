/**
 * The throwaway database that `npm test` and `npm run bench` run against: a fresh database
 * on the test cluster (never the developer's dev data), migrated and seeded exactly like a
 * real project, with pgTAP available. TEST_DATABASE_URL points them at another server.
 */
import { prepareDatabase, recreateDatabase } from "./database.ts";
import { createPgtapExtension, installPgtapFiles } from "./pgtap.ts";
import { startCluster, stopCluster, testClusterOptions } from "./postgres.ts";

export interface TestDatabase {
  url: string;
  /** Stops what setup started (nothing when TEST_DATABASE_URL was given). */
  close(): Promise<void>;
}

export async function setUpTestDatabase(name: string): Promise<TestDatabase> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    await prepareDatabase(external);
    await createPgtapExtension(external);
    return { url: external, close: async () => {} };
  }
  const cluster = testClusterOptions();
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
