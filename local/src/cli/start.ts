/**
 * `npm start`: runs the product locally. Today that is the database (embedded Postgres with
 * migrations and seed); the API gateway, Edge Functions, Stripe emulator and dashboard join
 * it as they are built. Writes the connection values to `.local/.env`; Ctrl-C stops it all.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { externalDatabaseUrl, prepareDatabase } from "../database.ts";
import { localStateDir } from "../paths.ts";
import { devClusterOptions, startCluster, stopCluster } from "../postgres.ts";

async function main(): Promise<void> {
  const external = externalDatabaseUrl();
  const cluster = devClusterOptions();
  console.log(external ? "Using DATABASE_URL." : `Starting embedded Postgres 17 on port ${cluster.port}...`);
  const url = external ?? (await startCluster(cluster));
  console.log("Applying migrations and seed...");
  await prepareDatabase(url);

  await mkdir(localStateDir, { recursive: true });
  await writeFile(path.join(localStateDir, ".env"), `DATABASE_URL=${url}\nSUPABASE_DB_URL=${url}\n`);
  console.log(`\nDatabase ready.\n  DATABASE_URL=${url}\n  (also written to .local/.env)\n\nPress Ctrl-C to stop.`);

  const stop = async () => {
    if (!external) await stopCluster(cluster);
    console.log("Stopped.");
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  setInterval(() => {}, 1 << 30);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
