/**
 * consume_credits through the local gateway (`POST /rest/v1/rpc/consume_credits`, service role
 * key) with 32 concurrent HTTP clients (autocannon), as a ratio of the same calls made directly
 * over SQL with 32 connections in the same run. Target: >= 0.5.
 */
import autocannon from "autocannon";
import { apiKeys } from "../local/gateway/keys.ts";
import { CONSUME } from "./consume.ts";
import { benchmark } from "./support/benchmark.ts";
import { bestOfInterleaved, createTargets, ORGANIZATIONS, SECONDS_PER_RUN, spread, throughput } from "./support/load.ts";
import { startGateway } from "./support/servers.ts";

const HTTP_CLIENTS = 32;

export interface GatewayRow {
  scenario: string;
  clients: number;
  httpPerSecond: number;
  sqlPerSecond: number;
  ratio: number;
  non2xx: number;
}

export default benchmark<GatewayRow>({
  section: "gateway",
  title: `consume_credits through the gateway (POST /rest/v1/rpc, ${HTTP_CLIENTS} HTTP clients) vs direct SQL`,
  async run({ db, databaseUrl }) {
    const target = spread(await createTargets(db, ORGANIZATIONS, "http"));
    const keys = await apiKeys();
    const gateway = await startGateway(databaseUrl, {});
    try {
      let next = 0;
      const body = () => JSON.stringify({ p_organization_id: target(next++).organizationId, p_event_key: "api_call_basic" });
      let non2xx = 0;
      const overHttp = async () => {
        const result = await autocannon({
          url: `${gateway.url}/rest/v1/rpc/consume_credits`,
          connections: HTTP_CLIENTS,
          duration: SECONDS_PER_RUN,
          method: "POST",
          headers: { apikey: keys.serviceRoleKey, authorization: `Bearer ${keys.serviceRoleKey}`, "content-type": "application/json" },
          requests: [{ setupRequest: (request) => ({ ...request, body: body() }) }],
        });
        non2xx += result.non2xx + result.errors;
        return result["2xx"] / result.duration;
      };
      // Warm the gateway's pool and plan caches before timing.
      await overHttp();
      non2xx = 0;
      const best = await bestOfInterleaved({
        sql: () => throughput(db, HTTP_CLIENTS, (client, i) => client.query(CONSUME, [target(i).organizationId])),
        http: overHttp,
      });
      const row: GatewayRow = {
        scenario: `${ORGANIZATIONS.toLocaleString("en")} organizations`,
        clients: HTTP_CLIENTS,
        httpPerSecond: best.http,
        sqlPerSecond: best.sql,
        ratio: best.http / best.sql,
        non2xx,
      };
      console.log(
        `  ${row.scenario} ${HTTP_CLIENTS} clients: HTTP ${row.httpPerSecond.toFixed(0)}/s, direct SQL ${row.sqlPerSecond.toFixed(0)}/s ` +
          `(ratio ${row.ratio.toFixed(2)}, target >= 0.5)${non2xx ? `, ${non2xx} non-2xx responses or errors` : ""}`,
      );
      return row;
    } finally {
      await gateway.stop();
    }
  },
  table: (r) => [
    "| consume_credits via gateway | clients | HTTP/s | direct SQL/s | ratio |",
    "|---|---:|---:|---:|---:|",
    `| ${r.scenario} | ${r.clients} | ${r.httpPerSecond.toFixed(0)} | ${r.sqlPerSecond.toFixed(0)} | ${r.ratio.toFixed(2)} |`,
  ],
});
