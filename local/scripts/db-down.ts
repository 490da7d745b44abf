/** `npm run db:down`: stops the embedded dev Postgres (a test run stops its own cluster). */
import { devClusterOptions, stopCluster } from "../stack/postgres.ts";

async function main(): Promise<void> {
  const stopped = await stopCluster(devClusterOptions());
  console.log(stopped ? "Embedded Postgres stopped." : "Embedded Postgres was not running.");
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
