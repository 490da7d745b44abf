/**
 * Stripe webhook acknowledgements per second through `functions/stripe-webhook` (signature
 * checked, stored over the function's direct Postgres connection, SUPABASE_DB_URL, which the
 * gateway passes; acknowledged; applied in the background), as a ratio of the same signed POSTs
 * to a function that only verifies the signature (bench/functions/webhook-verify-only).
 * Target: >= 0.8. And, under that load, the time from acknowledgement to applied (p50, p99: the
 * inbox row's processed_at minus its received_at); every run waits until all its events are
 * applied before the next one starts, so no background work overlaps a measurement.
 *
 * Two kinds of events: an unhandled type (verify, store in the inbox as ignored, acknowledge)
 * and `customer.subscription.updated` (verify, store, acknowledge; then, in the background,
 * re-read the subscription from Stripe and apply it under the organization's lock, marking it
 * processed), spread over 20 subscriptions.
 */
import autocannon from "autocannon";
import type pg from "pg";
import Stripe from "stripe";
import { eventPayload } from "../functions/tests/stripe-event-payload.ts";
import { apiKeys } from "../local/gateway/keys.ts";
import { benchmark } from "./support/benchmark.ts";
import { SECONDS_PER_RUN } from "./support/load.ts";
import { startGateway, startStripeEmulator, type Server } from "./support/servers.ts";

const WEBHOOK_CLIENTS = 16;
const WEBHOOK_SUBSCRIPTIONS = 20;
const BENCH_WEBHOOK_SECRET = "whsec_bench_signing_secret";

export interface WebhookRow {
  scenario: string;
  clients: number;
  webhookPerSecond: number;
  verifyOnlyPerSecond: number;
  ratio: number;
  non2xx: number;
  /** Acknowledgement to applied, over the events of the measured runs (null: nothing to apply). */
  appliedP50Ms: number | null;
  appliedP99Ms: number | null;
  /** Events of the measured runs, and how many of them the inbox sweep had to apply. */
  events: number;
  swept: number;
}

/**
 * Subscriptions on the emulator for organizations in our database, with the starter plan's
 * monthly price known to both, as checkout would leave them. Returns the subscription ids.
 */
async function subscribedOrganizations(db: pg.Pool, stripe: Stripe, stripeUrl: string): Promise<string[]> {
  const price = await stripe.prices.create({
    currency: "usd",
    unit_amount: 1900,
    recurring: { interval: "month" },
    product_data: { name: "Starter" },
  });
  await db.query("update public.subscription_plans set stripe_monthly_price_id = $1 where code = 'starter'", [price.id]);
  const { rows } = await db.query<{ id: string }>(
    "insert into public.organizations (name) select 'webhook ' || g from generate_series(1, $1) g returning id",
    [WEBHOOK_SUBSCRIPTIONS],
  );
  const subscriptions: string[] = [];
  for (const { id } of rows) {
    const metadata = { organization_id: id };
    const session = await stripe.checkout.sessions.create({
      mode: "subscription",
      line_items: [{ price: price.id, quantity: 1 }],
      client_reference_id: id,
      metadata,
      subscription_data: { metadata },
      success_url: "http://127.0.0.1/done",
    });
    const response = await fetch(`${stripeUrl}/_emulator/checkout/${session.id}/pay`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ card_number: "4242424242424242", email: `billing-${id}@bench.test` }),
    });
    const paid = (await response.json()) as { subscription: string };
    subscriptions.push(paid.subscription);
  }
  return subscriptions;
}

interface Signed {
  payload: string;
  signature: string;
}

export default benchmark<WebhookRow[]>({
  section: "webhook",
  title: `Stripe webhook events through the function vs a verify-only function (${WEBHOOK_CLIENTS} HTTP clients)`,
  async run({ db, databaseUrl }) {
    const emulator = await startStripeEmulator();
    let gateway: Server | undefined;
    try {
      const base = new URL(emulator.url);
      const stripe = new Stripe("sk_test_local_emulator", { host: base.hostname, port: Number(base.port), protocol: "http" });
      const subscriptions = await subscribedOrganizations(db, stripe, emulator.url);

      // The real webhook and the verify-only baseline side by side, both without a JWT.
      gateway = await startGateway(databaseUrl, {
        "stripe-webhook": "functions/stripe-webhook/index.ts",
        "webhook-verify-only": "bench/functions/webhook-verify-only/index.ts",
      }, {
        STRIPE_SECRET_KEY: "sk_test_local_emulator",
        STRIPE_WEBHOOK_SECRET: BENCH_WEBHOOK_SECRET,
        STRIPE_API_BASE: emulator.url,
        APP_URL: "http://127.0.0.1:5173",
      });
      const gatewayUrl = gateway.url;

      let sequence = 0;
      const signedEvent = (type: string, object: Record<string, unknown>): Signed => {
        const payload = eventPayload(`evt_bench_${process.pid}_${++sequence}`, type, object);
        return { payload, signature: Stripe.webhooks.generateTestHeaderString({ payload, secret: BENCH_WEBHOOK_SECRET }) };
      };
      const post = async (fn: string, event: () => Signed) => {
        const result = await autocannon({
          url: `${gatewayUrl}/functions/v1/${fn}`,
          connections: WEBHOOK_CLIENTS,
          duration: SECONDS_PER_RUN,
          method: "POST",
          requests: [{
            setupRequest: (request) => {
              const { payload, signature } = event();
              return { ...request, body: payload, headers: { ...request.headers, "content-type": "application/json", "stripe-signature": signature } };
            },
          }],
        });
        return { perSecond: result["2xx"] / result.duration, non2xx: result.non2xx + result.errors };
      };

      const kinds: Array<[string, () => Signed]> = [
        ["unhandled type (verify, inbox, acknowledge)", () => signedEvent("customer.updated", { id: "cus_bench", object: "customer" })],
        [
          "customer.subscription.updated (acknowledge; re-read from Stripe and apply in the background)",
          () => signedEvent("customer.subscription.updated", { id: subscriptions[sequence % subscriptions.length], object: "subscription" }),
        ],
      ];
      const { serviceRoleKey } = await apiKeys();
      let swept = 0;
      /**
       * Waits until no event is left `received`: the background applies of the last run are
       * done. If they stall (a background apply failed for now), the inbox sweep applies the
       * rest, as the schedule would; those are counted.
       */
      const drain = async () => {
        const deadline = Date.now() + 180_000;
        let last = -1;
        let stalledSince = Date.now();
        for (;;) {
          const { rows } = await db.query<{ n: number }>("select count(*)::int as n from public.stripe_events where status = 'received'");
          const left = rows[0]!.n;
          if (left === 0) return;
          if (Date.now() > deadline) throw new Error(`${left} webhook events still not applied after 3 minutes`);
          if (left !== last) {
            last = left;
            stalledSince = Date.now();
          } else if (Date.now() - stalledSince > 5_000) {
            const response = await fetch(`${gatewayUrl}/functions/v1/stripe-webhook/sweep`, {
              method: "POST",
              headers: { authorization: `Bearer ${serviceRoleKey}`, "content-type": "application/json" },
              body: JSON.stringify({ older_than_seconds: 0, limit: 1000 }),
            });
            const counts = await response.json() as { applied?: number; ignored?: number; parked?: number };
            swept += (counts.applied ?? 0) + (counts.ignored ?? 0) + (counts.parked ?? 0);
            stalledSince = Date.now();
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };
      const rows: WebhookRow[] = [];
      for (const [scenario, event] of kinds) {
        await post("stripe-webhook", event); // warm up
        await drain();
        let webhookPerSecond = 0;
        let verifyOnlyPerSecond = 0;
        let non2xx = 0;
        swept = 0;
        const since = (await db.query<{ since: Date }>("select clock_timestamp() as since")).rows[0]!.since;
        for (let round = 0; round < 2; round++) {
          const baseline = await post("webhook-verify-only", event);
          const real = await post("stripe-webhook", event);
          await drain();
          verifyOnlyPerSecond = Math.max(verifyOnlyPerSecond, baseline.perSecond);
          webhookPerSecond = Math.max(webhookPerSecond, real.perSecond);
          non2xx += baseline.non2xx + real.non2xx;
        }
        // Events the background applied (an unhandled type is finished as it is stored).
        const { rows: [timing] } = await db.query<{ events: number; p50: number | null; p99: number | null }>(
          `select count(*)::int as events,
                  percentile_cont(0.5) within group (order by extract(epoch from processed_at - received_at) * 1000)
                    filter (where type <> 'customer.updated') as p50,
                  percentile_cont(0.99) within group (order by extract(epoch from processed_at - received_at) * 1000)
                    filter (where type <> 'customer.updated') as p99
             from public.stripe_events
            where received_at >= $1 and id like 'evt_bench_%'`,
          [since],
        );
        const row: WebhookRow = {
          scenario,
          clients: WEBHOOK_CLIENTS,
          webhookPerSecond,
          verifyOnlyPerSecond,
          ratio: webhookPerSecond / verifyOnlyPerSecond,
          non2xx,
          appliedP50Ms: timing?.p50 ?? null,
          appliedP99Ms: timing?.p99 ?? null,
          events: timing?.events ?? 0,
          swept,
        };
        console.log(
          `  ${scenario}: acknowledged ${webhookPerSecond.toFixed(0)}/s, verify-only ${verifyOnlyPerSecond.toFixed(0)}/s ` +
            `(ratio ${row.ratio.toFixed(2)})` +
            (row.appliedP50Ms === null ? "" : `; acknowledged to applied p50 ${row.appliedP50Ms.toFixed(0)} ms, p99 ${row.appliedP99Ms!.toFixed(0)} ms`) +
            ` over ${row.events} events${swept ? ` (${swept} applied by the sweep)` : ""}` +
            (non2xx ? `, ${non2xx} non-2xx responses or errors` : ""),
        );
        rows.push(row);
      }
      return rows;
    } finally {
      await gateway?.stop();
      await emulator.stop();
    }
  },
  table: (rows) => {
    const ms = (value: number | null) => (value === null ? "-" : `${value.toFixed(0)} ms`);
    return [
      "| Stripe webhook | clients | acknowledged/s | verify-only/s | ratio | ack -> applied p50 | p99 |",
      "|---|---:|---:|---:|---:|---:|---:|",
      ...rows.map((r) =>
        `| ${r.scenario} | ${r.clients} | ${r.webhookPerSecond.toFixed(0)} | ${r.verifyOnlyPerSecond.toFixed(0)} | ` +
        `${r.ratio.toFixed(2)} | ${ms(r.appliedP50Ms)} | ${ms(r.appliedP99Ms)} |`),
    ];
  },
});
