/** `npm run db:down`: stops the embedded Postgres (the dev cluster, and a leftover test cluster). */
import { devClusterOptions, stopCluster, testClusterOptions } from "../postgres.ts";

async function main(): Promise<void> {
  const stopped = await stopCluster(devClusterOptions());
  await stopCluster(testClusterOptions());
  console.log(stopped ? "Embedded Postgres stopped." : "Embedded Postgres was not running.");
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
