/**
 * `npm run db:up`: starts (or reuses) the embedded Postgres, applies the platform bootstrap,
 * migrations and seed, and prints `DATABASE_URL=...` as its last line. With DATABASE_URL (or
 * SUPABASE_DB_URL) set, migrates that database instead and starts nothing.
 */
import { externalDatabaseUrl, prepareDatabase } from "../stack/database.ts";
import { clusterDataDir, devClusterOptions, startCluster } from "../stack/postgres.ts";

async function main(): Promise<void> {
  const external = externalDatabaseUrl();
  let url: string;
  if (external) {
    console.log("Using the database from DATABASE_URL / SUPABASE_DB_URL.");
    url = external;
  } else {
    const cluster = devClusterOptions();
    console.log(`Starting embedded Postgres 17 on port ${cluster.port} (data in ${await clusterDataDir(cluster)})...`);
    url = await startCluster(cluster);
  }
  console.log("Applying platform bootstrap (local only), migrations and seed...");
  await prepareDatabase(url);
  console.log(`DATABASE_URL=${url}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
