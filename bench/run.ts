/**
 * `npm run bench`: measures the credit functions against a bare baseline in the same run,
 * on the same database, and reports ratios (these machines are noisy; ratios travel).
 *
 * 1. consume_credits throughput with 1, 8 and 32 connections, for one hot organization and
 *    spread over 10,000 organizations, next to two baselines on the same tables:
 *    - the bare baseline transaction: BEGIN; UPDATE the lot (remaining - 1); INSERT the
 *      ledger row; COMMIT, as a client writes it by hand (no checks, no precedence, no
 *      idempotency). Target: consume / baseline >= 0.7.
 *    - the floor: the same two writes fused into one statement (a writable CTE, one round
 *      trip), the least any design can do. Reported so the overhead of the rules is visible.
 * 2. get_credit_balance latency for an organization with 1,000,000 ledger rows next to one
 *    with 1,000: it must not grow with the ledger.
 * 3. consume_credits through the local gateway (`POST /rest/v1/rpc/consume_credits`, service
 *    role key) with 32 concurrent HTTP clients (autocannon), as a ratio of the same calls made
 *    directly over SQL with 32 connections in the same run. Target: >= 0.5.
 * 4. Stripe webhook acknowledgements per second through `functions/stripe-webhook` (signature
 *    checked, stored over the function's direct Postgres connection, SUPABASE_DB_URL, which
 *    the gateway passes; acknowledged; applied in the background), as a ratio of the same signed
 *    POSTs to a function that only verifies the signature (bench/functions/webhook-verify-only).
 *    Target: >= 0.8. And, under that load, the time from acknowledgement to applied (p50, p99:
 *    the inbox row's processed_at minus its received_at); every run waits until all its events
 *    are applied before the next one starts, so no background work overlaps a measurement.
 * 5. Notifications delivered per second by `POST /functions/v1/notifications/deliver` (rounds
 *    one after another, as the scheduler calls it) to a receiver that verifies nothing, with
 *    2,000 outbox rows prepared, next to the same Standard Webhooks-signed POSTs from a plain
 *    loop, 50 at a time (a round's batch): the ratio is what the outbox (claim, gateway hop,
 *    one durable attempt record per notification) costs on top of sending.
 *
 * Everything runs on the bench cluster (local/stack/postgres.ts benchClusterOptions: its own
 * port, BENCH_POSTGRES_PORT, default 54330), which commits with production durability
 * (Postgres's defaults: fsync, synchronous_commit and full_page_writes on), and is stopped at
 * the end as `npm test` stops its cluster (KEEP_TEST_DATABASE=1 leaves it running).
 * BENCH_DATABASE_URL (or TEST_DATABASE_URL) measures another server instead. `--relaxed` runs
 * on the test cluster instead (fsync, synchronous_commit, full_page_writes off), for
 * comparison only: the headline figures are production durability.
 *
 * Prints tables and writes bench/results/latest.json (latest-relaxed.json with --relaxed).
 * `npm run bench -- <section>...` runs only the named sections (consume, balance, gateway,
 * webhook, notifications).
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import pg from "pg";
import Stripe from "stripe";
import { Webhook } from "standardwebhooks";
import { apiKeys } from "../local/gateway/keys.ts";
import { repoRoot } from "../local/shared/paths.ts";
import { setUpBenchDatabase, setUpTestDatabase } from "../local/stack/test-database.ts";

const SECONDS_PER_RUN = Number(process.env.BENCH_SECONDS ?? 3);
const CONNECTIONS = [1, 8, 32];
const ORGANIZATIONS = 10_000;

interface Target {
  organizationId: string;
  lotId: string;
}

interface ThroughputRow {
  scenario: string;
  connections: number;
  consumePerSecond: number;
  baselinePerSecond: number;
  ratio: number;
  floorPerSecond: number;
  floorRatio: number;
}

async function createTargets(db: pg.Pool, count: number, label: string): Promise<Target[]> {
  const { rows } = await db.query<{ organization_id: string; lot_id: string }>(
    `with orgs as (
       insert into public.organizations (name)
       select $2 || ' ' || g from generate_series(1, $1) g
       returning id
     )
     select o.id as organization_id,
            ((public.grant_credits(o.id, 1000000000, 'purchased')) ->> 'lot_id') as lot_id
       from orgs o`,
    [count, label],
  );
  return rows.map((r) => ({ organizationId: r.organization_id, lotId: r.lot_id }));
}

/** Runs `call` in a loop on `connections` clients for the configured time; returns calls per second. */
async function throughput(
  db: pg.Pool,
  connections: number,
  call: (client: pg.PoolClient, index: number) => Promise<unknown>,
): Promise<number> {
  const clients = await Promise.all(Array.from({ length: connections }, () => db.connect()));
  try {
    // Warm up each connection (plan caches, catalog caches) before timing.
    await Promise.all(clients.map((client, index) => call(client, index)));
    let count = 0;
    const started = performance.now();
    const deadline = started + SECONDS_PER_RUN * 1000;
    await Promise.all(
      clients.map(async (client, worker) => {
        let i = worker;
        while (performance.now() < deadline) {
          await call(client, i);
          i += connections;
          count++;
        }
      }),
    );
    return count / ((performance.now() - started) / 1000);
  } finally {
    for (const client of clients) client.release();
  }
}

const CONSUME = "select public.consume_credits($1, 'api_call_basic', 1)";
const BASELINE_UPDATE = "update public.credit_lots set remaining = remaining - 1 where id = $1 returning organization_id, source, remaining";
const BASELINE_INSERT = `
  insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id)
  values ($1, 'consumption', $2, -1, $3, $4)`;

/** The bare baseline transaction, as a client writes it by hand. */
async function baselineTransaction(client: pg.PoolClient, lotId: string): Promise<void> {
  await client.query("begin");
  const { rows } = await client.query<{ organization_id: string; source: string; remaining: number }>(BASELINE_UPDATE, [lotId]);
  const lot = rows[0]!;
  await client.query(BASELINE_INSERT, [lot.organization_id, lot.source, lot.remaining, lotId]);
  await client.query("commit");
}

const FLOOR = `
  with lot as (
    update public.credit_lots set remaining = remaining - 1 where id = $1 returning organization_id, source, remaining
  )
  insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id)
  select organization_id, 'consumption', source, -1, remaining, $1 from lot`;

async function benchConsume(db: pg.Pool): Promise<ThroughputRow[]> {
  const [hot] = await createTargets(db, 1, "hot");
  const many = await createTargets(db, ORGANIZATIONS, "tenant");
  const scenarios: Array<[string, (i: number) => Target]> = [
    ["one hot organization", () => hot!],
    [`${ORGANIZATIONS.toLocaleString("en")} organizations`, (i) => many[(i * 7919) % many.length]!],
  ];
  const rows: ThroughputRow[] = [];
  for (const [scenario, target] of scenarios) {
    for (const connections of CONNECTIONS) {
      // Interleave the two sides twice and keep each side's best run, so a noisy moment
      // on the machine does not land on one side only.
      let consumePerSecond = 0;
      let baselinePerSecond = 0;
      let floorPerSecond = 0;
      for (let round = 0; round < 2; round++) {
        baselinePerSecond = Math.max(baselinePerSecond, await throughput(db, connections, (client, i) =>
          baselineTransaction(client, target(i).lotId)));
        floorPerSecond = Math.max(floorPerSecond, await throughput(db, connections, (client, i) =>
          client.query(FLOOR, [target(i).lotId])));
        consumePerSecond = Math.max(consumePerSecond, await throughput(db, connections, (client, i) =>
          client.query(CONSUME, [target(i).organizationId])));
      }
      const row = {
        scenario, connections, consumePerSecond, baselinePerSecond, ratio: consumePerSecond / baselinePerSecond,
        floorPerSecond, floorRatio: consumePerSecond / floorPerSecond,
      };
      console.log(
        `  ${scenario.padEnd(24)} ${String(connections).padStart(2)} conn: consume ${consumePerSecond.toFixed(0).padStart(6)}/s, ` +
          `baseline ${baselinePerSecond.toFixed(0).padStart(6)}/s (ratio ${row.ratio.toFixed(2)}), ` +
          `floor ${floorPerSecond.toFixed(0).padStart(6)}/s (ratio ${row.floorRatio.toFixed(2)})`,
      );
      rows.push(row);
    }
  }
  return rows;
}

interface HttpRow {
  scenario: string;
  clients: number;
  httpPerSecond: number;
  sqlPerSecond: number;
  ratio: number;
  non2xx: number;
}

const HTTP_CLIENTS = 32;

/** consume_credits over HTTP through the gateway next to direct SQL, same organizations, same run. */
async function benchGateway(db: pg.Pool, databaseUrl: string): Promise<HttpRow> {
  const targets = await createTargets(db, ORGANIZATIONS, "http");
  const keys = await apiKeys();
  const gateway = await startProcess("local/gateway/main.ts", { DATABASE_URL: databaseUrl, API_PORT: "0", GATEWAY_FUNCTIONS: "0" }, GATEWAY_READY);
  try {
    let next = 0;
    const body = () => JSON.stringify({ p_organization_id: targets[(next++ * 7919) % targets.length]!.organizationId, p_event_key: "api_call_basic" });
    const overHttp = async () => {
      const result = await autocannon({
        url: `${gateway.url}/rest/v1/rpc/consume_credits`,
        connections: HTTP_CLIENTS,
        duration: SECONDS_PER_RUN,
        method: "POST",
        headers: { apikey: keys.serviceRoleKey, authorization: `Bearer ${keys.serviceRoleKey}`, "content-type": "application/json" },
        requests: [{ setupRequest: (request) => ({ ...request, body: body() }) }],
      });
      return { perSecond: result["2xx"] / result.duration, non2xx: result.non2xx + result.errors };
    };
    // Warm the gateway's pool and plan caches before timing.
    await overHttp();
    let httpPerSecond = 0;
    let sqlPerSecond = 0;
    let non2xx = 0;
    for (let round = 0; round < 2; round++) {
      sqlPerSecond = Math.max(sqlPerSecond, await throughput(db, HTTP_CLIENTS, (client, i) =>
        client.query(CONSUME, [targets[(i * 7919) % targets.length]!.organizationId])));
      const http = await overHttp();
      httpPerSecond = Math.max(httpPerSecond, http.perSecond);
      non2xx += http.non2xx;
    }
    const row = {
      scenario: `${ORGANIZATIONS.toLocaleString("en")} organizations`,
      clients: HTTP_CLIENTS,
      httpPerSecond,
      sqlPerSecond,
      ratio: httpPerSecond / sqlPerSecond,
      non2xx,
    };
    console.log(
      `  ${row.scenario} ${HTTP_CLIENTS} clients: HTTP ${httpPerSecond.toFixed(0)}/s, direct SQL ${sqlPerSecond.toFixed(0)}/s ` +
        `(ratio ${row.ratio.toFixed(2)}, target >= 0.5)${non2xx ? `, ${non2xx} non-2xx responses or errors` : ""}`,
    );
    return row;
  } finally {
    await gateway.stop();
  }
}

/**
 * A server in a process of its own (as under `npm start`), so autocannon does not share its
 * event loop; resolves with the URL it prints once listening.
 */
async function startProcess(script: string, env: NodeJS.ProcessEnv, ready: RegExp): Promise<{ url: string; stop: () => Promise<void> }> {
  // BENCH_CPU_PROF_DIR: each server writes a V8 CPU profile there when it stops (open it in
  // Chrome DevTools' Performance panel), to see where a request's time goes.
  const profile = process.env.BENCH_CPU_PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF_DIR)}`] : [];
  const child = spawn(process.execPath, [...profile, "--import", "tsx", path.join(repoRoot, script)], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk;
      const match = ready.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once("exit", (code) => reject(new Error(`${script} exited (${code}) before listening:\n${output}`)));
  });
  return {
    url,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

const GATEWAY_READY = /GATEWAY_URL=(\S+)/;

interface WebhookRow {
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

const WEBHOOK_CLIENTS = 16;
const WEBHOOK_SUBSCRIPTIONS = 20;
const BENCH_WEBHOOK_SECRET = "whsec_bench_signing_secret";

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

/**
 * The Stripe webhook's throughput through the gateway, with signature verification, next to
 * a function that only verifies the same signed POST (bench/functions/webhook-verify-only).
 * Two kinds of events: an unhandled type (verify, store in the inbox as ignored, acknowledge)
 * and `customer.subscription.updated` (verify, store, acknowledge; then, in the background,
 * re-read the subscription from Stripe and apply it under the organization's lock, marking it
 * processed), spread over 20 subscriptions.
 */
async function benchWebhook(db: pg.Pool, databaseUrl: string): Promise<WebhookRow[]> {
  const emulator = await startProcess("local/stripe-emulator/main.ts", { PORT: "0", STRIPE_WEBHOOK_URL: "" }, /listening on (\S+)/);
  const functionsDir = await mkdtemp(path.join(os.tmpdir(), "bench-functions-"));
  let gateway: { url: string; stop: () => Promise<void> } | undefined;
  try {
    const base = new URL(emulator.url);
    const stripe = new Stripe("sk_test_local_emulator", { host: base.hostname, port: Number(base.port), protocol: "http" });
    const subscriptions = await subscribedOrganizations(db, stripe, emulator.url);

    // Serve the real webhook and the verify-only baseline side by side, both without a JWT.
    const functions = {
      "stripe-webhook": path.join(repoRoot, "functions", "stripe-webhook", "index.ts"),
      "webhook-verify-only": path.join(repoRoot, "bench", "functions", "webhook-verify-only", "index.ts"),
    };
    for (const name of Object.keys(functions)) await mkdir(path.join(functionsDir, name));
    const config = Object.entries(functions)
      .map(([name, entrypoint]) => `[functions.${name}]\nverify_jwt = false\nentrypoint = ${JSON.stringify(entrypoint)}\n`)
      .join("\n");
    await writeFile(path.join(functionsDir, "config.toml"), config);
    gateway = await startProcess("local/gateway/main.ts", {
      DATABASE_URL: databaseUrl,
      API_PORT: "0",
      GATEWAY_FUNCTIONS_DIR: functionsDir,
      GATEWAY_FUNCTIONS_CONFIG: path.join(functionsDir, "config.toml"),
      STRIPE_SECRET_KEY: "sk_test_local_emulator",
      STRIPE_WEBHOOK_SECRET: BENCH_WEBHOOK_SECRET,
      STRIPE_API_BASE: emulator.url,
      APP_URL: "http://127.0.0.1:5173",
    }, GATEWAY_READY);

    let sequence = 0;
    const signedEvent = (type: string, object: Record<string, unknown>) => {
      const payload = JSON.stringify({
        id: `evt_bench_${process.pid}_${++sequence}`,
        object: "event",
        api_version: Stripe.API_VERSION,
        created: Math.floor(Date.now() / 1000),
        livemode: false,
        pending_webhooks: 1,
        request: { id: null, idempotency_key: null },
        type,
        data: { object },
      });
      return { payload, signature: Stripe.webhooks.generateTestHeaderString({ payload, secret: BENCH_WEBHOOK_SECRET }) };
    };
    const post = async (fn: string, event: () => { payload: string; signature: string }) => {
      const result = await autocannon({
        url: `${gateway!.url}/functions/v1/${fn}`,
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

    const kinds: Array<[string, () => { payload: string; signature: string }]> = [
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
          const response = await fetch(`${gateway!.url}/functions/v1/stripe-webhook/sweep`, {
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
    await rm(functionsDir, { recursive: true, force: true });
  }
}

interface NotificationsRow {
  scenario: string;
  notifications: number;
  deliveredPerSecond: number;
  baselinePerSecond: number;
  ratio: number;
  /** Delivery rounds (POST /notifications/deliver) the function needed per run. */
  rounds: number;
  undelivered: number;
}

const NOTIFICATIONS = 2_000;
/** A delivery round's batch (functions/notifications/deliver.ts BATCH): the baseline sends as many at once. */
const NOTIFICATION_BATCH = 50;
const BENCH_NOTIFICATION_SECRET = "whsec_" + Buffer.from("bench notification signing secret").toString("base64");

/**
 * Notifications delivered per second by `POST /functions/v1/notifications/deliver` (through
 * the gateway, service role key, one round after another as the scheduler calls it) to a
 * receiver that verifies nothing (bench/notification-receiver.ts), with NOTIFICATIONS outbox
 * rows prepared, one per organization. The baseline, in the same run and to the same receiver:
 * the same bodies signed with standardwebhooks and POSTed from a plain loop, NOTIFICATION_BATCH
 * at a time as a round sends them, with no outbox at all. The ratio is what the outbox costs
 * on top of sending (claiming, the gateway hop, recording each attempt durably).
 */
async function benchNotifications(db: pg.Pool, databaseUrl: string): Promise<NotificationsRow> {
  const receiver = await startProcess("bench/notification-receiver.ts", {}, /listening on (\S+)/);
  const functionsDir = await mkdtemp(path.join(os.tmpdir(), "bench-functions-"));
  let gateway: { url: string; stop: () => Promise<void> } | undefined;
  try {
    await mkdir(path.join(functionsDir, "notifications"));
    const entrypoint = path.join(repoRoot, "functions", "notifications", "index.ts");
    await writeFile(path.join(functionsDir, "config.toml"), `[functions.notifications]\nverify_jwt = false\nentrypoint = ${JSON.stringify(entrypoint)}\n`);
    gateway = await startProcess("local/gateway/main.ts", {
      DATABASE_URL: databaseUrl,
      API_PORT: "0",
      GATEWAY_FUNCTIONS_DIR: functionsDir,
      GATEWAY_FUNCTIONS_CONFIG: path.join(functionsDir, "config.toml"),
      STRIPE_SECRET_KEY: "sk_test_unused",
      STRIPE_WEBHOOK_SECRET: BENCH_WEBHOOK_SECRET,
      APP_URL: "http://127.0.0.1:5173",
      BILLING_WEBHOOK_URL: receiver.url,
      BILLING_WEBHOOK_SECRET: BENCH_NOTIFICATION_SECRET,
      SMTP_URL: "",
    }, GATEWAY_READY);
    const { serviceRoleKey } = await apiKeys();
    const { rows: organizations } = await db.query<{ id: string }>(
      "insert into public.organizations (name) select 'notify ' || g from generate_series(1, $1) g returning id",
      [NOTIFICATIONS],
    );
    let run = 0;
    /** NOTIFICATIONS pending outbox rows, one per organization, as alerts would write them. */
    const prepare = async () => {
      run++;
      await db.query(
        `select private.enqueue_notification(o.id, 'alert.raised', 'bench-' || $2 || '-' || o.id,
                  jsonb_build_object('alert', jsonb_build_object('kind', 'low_balance', 'severity', 'warning')))
           from unnest($1::uuid[]) as o(id)`,
        [organizations.map((o) => o.id), `${process.pid}-${run}`],
      );
    };
    const pending = async () =>
      (await db.query<{ n: number }>("select count(*)::int as n from public.notifications where status = 'pending'")).rows[0]!.n;
    const deliver = async () => {
      const response = await fetch(`${gateway!.url}/functions/v1/notifications/deliver`, {
        method: "POST",
        headers: { authorization: `Bearer ${serviceRoleKey}` },
      });
      if (!response.ok) throw new Error(`deliver answered ${response.status}: ${await response.text()}`);
      return (await response.json()) as { delivered: number };
    };
    /** Rounds until a round delivers nothing; returns delivered per second and rounds. */
    const throughFunction = async () => {
      await prepare();
      let delivered = 0;
      let rounds = 0;
      const started = performance.now();
      for (;;) {
        const counts = await deliver();
        rounds++;
        if (counts.delivered === 0) break;
        delivered += counts.delivered;
      }
      return { perSecond: delivered / ((performance.now() - started) / 1000), rounds };
    };
    const webhook = new Webhook(BENCH_NOTIFICATION_SECRET);
    /** The same bodies, signed and POSTed by a plain loop, a batch at a time. */
    const plainLoop = async () => {
      const ids = organizations.map((o) => o.id);
      const started = performance.now();
      for (let i = 0; i < ids.length; i += NOTIFICATION_BATCH) {
        await Promise.all(ids.slice(i, i + NOTIFICATION_BATCH).map(async (organizationId) => {
          const id = crypto.randomUUID();
          const now = new Date();
          const body = JSON.stringify({
            type: "alert.raised",
            timestamp: now.toISOString(),
            data: { organization_id: organizationId, alert: { kind: "low_balance", severity: "warning" } },
          });
          const response = await fetch(receiver.url, {
            method: "POST",
            headers: {
              "Content-Type": "application/json",
              "webhook-id": id,
              "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
              "webhook-signature": webhook.sign(id, now, body),
            },
            body,
          });
          await response.body?.cancel();
          if (!response.ok) throw new Error(`receiver answered ${response.status}`);
        }));
      }
      return ids.length / ((performance.now() - started) / 1000);
    };
    // Warm up both paths (the function's first round starts its Deno worker).
    await throughFunction();
    await plainLoop();
    let deliveredPerSecond = 0;
    let baselinePerSecond = 0;
    let rounds = 0;
    for (let round = 0; round < 2; round++) {
      baselinePerSecond = Math.max(baselinePerSecond, await plainLoop());
      const measured = await throughFunction();
      if (measured.perSecond > deliveredPerSecond) {
        deliveredPerSecond = measured.perSecond;
        rounds = measured.rounds;
      }
    }
    const row: NotificationsRow = {
      scenario: `${NOTIFICATIONS.toLocaleString("en")} pending webhook notifications`,
      notifications: NOTIFICATIONS,
      deliveredPerSecond,
      baselinePerSecond,
      ratio: deliveredPerSecond / baselinePerSecond,
      rounds,
      undelivered: await pending(),
    };
    console.log(
      `  ${row.scenario}: delivered ${deliveredPerSecond.toFixed(0)}/s in ${rounds} rounds, ` +
        `plain signed POSTs ${baselinePerSecond.toFixed(0)}/s (ratio ${row.ratio.toFixed(2)})` +
        (row.undelivered ? `, ${row.undelivered} left pending` : ""),
    );
    return row;
  } finally {
    await gateway?.stop();
    await receiver.stop();
    await rm(functionsDir, { recursive: true, force: true });
  }
}

/**
 * Gives an organization `ledgerRows` ledger rows cheaply: one grant, then consumption rows
 * written in bulk (as the table owner), with the lot and the balances kept consistent, plus
 * a thousand exhausted lots, as a long-lived organization accumulates.
 */
async function organizationWithLedger(db: pg.Pool, ledgerRows: number): Promise<string> {
  const [target] = await createTargets(db, 1, `ledger-${ledgerRows}`);
  const { organizationId, lotId } = target!;
  await db.query(
    `insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id, created_at)
     select $1, 'consumption', 'purchased', -1, 1000000000 - g, $2, now() - make_interval(secs => $3 - g)
       from generate_series(1, $3 - 1) g`,
    [organizationId, lotId, ledgerRows],
  );
  await db.query("update public.credit_lots set remaining = remaining - ($2 - 1) where id = $1", [lotId, ledgerRows]);
  await db.query(
    `insert into public.credit_lots (organization_id, source, granted, remaining, reference)
     select $1, 'purchased', 10, 0, 'exhausted-' || g from generate_series(1, 1000) g`,
    [organizationId],
  );
  await db.query("analyze public.credit_transactions; analyze public.credit_lots");
  return organizationId;
}

async function latency(db: pg.Pool, organizationId: string, calls: number) {
  const client = await db.connect();
  try {
    for (let i = 0; i < 200; i++) await client.query("select public.get_credit_balance($1)", [organizationId]);
    const samples: number[] = [];
    for (let i = 0; i < calls; i++) {
      const started = performance.now();
      await client.query("select public.get_credit_balance($1)", [organizationId]);
      samples.push(performance.now() - started);
    }
    samples.sort((a, b) => a - b);
    return { p50: samples[Math.floor(calls * 0.5)]!, p99: samples[Math.floor(calls * 0.99)]! };
  } finally {
    client.release();
  }
}

/** `npm run bench -- webhook gateway` runs only those sections; no argument runs them all. */
const SECTIONS = ["consume", "balance", "gateway", "webhook", "notifications"] as const;
const RELAXED_FLAG = "--relaxed";
const relaxed = process.argv.includes(RELAXED_FLAG);
const chosen = process.argv.slice(2).filter((argument) => argument !== RELAXED_FLAG);
for (const name of chosen) {
  if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`unknown section ${name}: choose from ${SECTIONS.join(", ")}`);
}
const runs = (section: (typeof SECTIONS)[number]) => chosen.length === 0 || chosen.includes(section);

async function measureBalance(db: pg.Pool) {
  const small = await organizationWithLedger(db, 1_000);
  const large = await organizationWithLedger(db, 1_000_000);
  const smallLatency = await latency(db, small, 2000);
  const largeLatency = await latency(db, large, 2000);
  console.log(`  1,000 rows:     p50 ${smallLatency.p50.toFixed(3)} ms, p99 ${smallLatency.p99.toFixed(3)} ms`);
  console.log(`  1,000,000 rows: p50 ${largeLatency.p50.toFixed(3)} ms, p99 ${largeLatency.p99.toFixed(3)} ms`);
  const ratioP50 = largeLatency.p50 / smallLatency.p50;
  console.log(`  ratio (1M / 1k, p50): ${ratioP50.toFixed(2)}`);
  return { ledger1k: smallLatency, ledger1m: largeLatency, ratioP50 };
}

async function main(): Promise<void> {
  console.log(`Preparing the benchmark database (${relaxed ? "test cluster, relaxed durability" : "bench cluster, production durability"})...`);
  const database = relaxed ? await setUpTestDatabase("billing_bench") : await setUpBenchDatabase("billing_bench");
  const db = new pg.Pool({ connectionString: database.url, max: 40 });
  try {
    const { rows: [durability] } = await db.query<{ fsync: string; synchronous_commit: string; full_page_writes: string }>(
      `select current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit,
              current_setting('full_page_writes') as full_page_writes`,
    );
    console.log(
      `Durability: fsync=${durability!.fsync}, synchronous_commit=${durability!.synchronous_commit}, full_page_writes=${durability!.full_page_writes}`,
    );
    let consume: ThroughputRow[] | undefined;
    let balance: Awaited<ReturnType<typeof measureBalance>> | undefined;
    let gateway: HttpRow | undefined;
    let webhook: WebhookRow[] | undefined;
    let notifications: NotificationsRow | undefined;
    if (runs("consume")) {
      console.log(`\nconsume_credits throughput (${SECONDS_PER_RUN}s per run, best of 2 interleaved rounds)`);
      consume = await benchConsume(db);
    }
    if (runs("balance")) {
      console.log("\nget_credit_balance latency by ledger size");
      balance = await measureBalance(db);
    }
    if (runs("gateway")) {
      console.log(`\nconsume_credits through the gateway (POST /rest/v1/rpc, ${HTTP_CLIENTS} HTTP clients) vs direct SQL`);
      gateway = await benchGateway(db, database.url);
    }
    if (runs("webhook")) {
      console.log(`\nStripe webhook events through the function vs a verify-only function (${WEBHOOK_CLIENTS} HTTP clients)`);
      webhook = await benchWebhook(db, database.url);
    }
    if (runs("notifications")) {
      console.log(`\nNotifications delivered by POST /functions/v1/notifications/deliver vs plain signed POSTs to the same receiver`);
      notifications = await benchNotifications(db, database.url);
    }

    if (consume) {
      console.log("\n| scenario | connections | consume_credits/s | baseline txn/s | ratio | one-statement floor/s | ratio to floor |");
      console.log("|---|---:|---:|---:|---:|---:|---:|");
      for (const r of consume) {
        console.log(
          `| ${r.scenario} | ${r.connections} | ${r.consumePerSecond.toFixed(0)} | ${r.baselinePerSecond.toFixed(0)} | ` +
            `${r.ratio.toFixed(2)} | ${r.floorPerSecond.toFixed(0)} | ${r.floorRatio.toFixed(2)} |`,
        );
      }
    }
    if (balance) {
      console.log("\n| get_credit_balance | p50 ms | p99 ms |");
      console.log("|---|---:|---:|");
      console.log(`| 1,000 ledger rows | ${balance.ledger1k.p50.toFixed(3)} | ${balance.ledger1k.p99.toFixed(3)} |`);
      console.log(`| 1,000,000 ledger rows | ${balance.ledger1m.p50.toFixed(3)} | ${balance.ledger1m.p99.toFixed(3)} |`);
    }
    if (gateway) {
      console.log("\n| consume_credits via gateway | clients | HTTP/s | direct SQL/s | ratio |");
      console.log("|---|---:|---:|---:|---:|");
      console.log(
        `| ${gateway.scenario} | ${gateway.clients} | ${gateway.httpPerSecond.toFixed(0)} | ${gateway.sqlPerSecond.toFixed(0)} | ${gateway.ratio.toFixed(2)} |`,
      );
    }
    if (webhook) {
      console.log("\n| Stripe webhook | clients | acknowledged/s | verify-only/s | ratio | ack -> applied p50 | p99 |");
      console.log("|---|---:|---:|---:|---:|---:|---:|");
      const ms = (value: number | null) => (value === null ? "-" : `${value.toFixed(0)} ms`);
      for (const r of webhook) {
        console.log(
          `| ${r.scenario} | ${r.clients} | ${r.webhookPerSecond.toFixed(0)} | ${r.verifyOnlyPerSecond.toFixed(0)} | ` +
            `${r.ratio.toFixed(2)} | ${ms(r.appliedP50Ms)} | ${ms(r.appliedP99Ms)} |`,
        );
      }
    }

    if (notifications) {
      console.log("\n| notifications | rows | delivered/s | plain signed POSTs/s | ratio | rounds |");
      console.log("|---|---:|---:|---:|---:|---:|");
      const n = notifications;
      console.log(
        `| ${n.scenario} | ${n.notifications} | ${n.deliveredPerSecond.toFixed(0)} | ${n.baselinePerSecond.toFixed(0)} | ${n.ratio.toFixed(2)} | ${n.rounds} |`,
      );
    }

    const resultsDir = path.join(repoRoot, "bench", "results");
    await mkdir(resultsDir, { recursive: true });
    const file = `latest${[...chosen, ...(relaxed ? ["relaxed"] : [])].map((part) => `-${part}`).join("")}.json`;
    await writeFile(
      path.join(resultsDir, file),
      JSON.stringify({ measuredAt: new Date().toISOString(), secondsPerRun: SECONDS_PER_RUN, durability, consume, balance, gateway, webhook, notifications }, null, 2) + "\n",
    );
    console.log(`\nWrote bench/results/${file}`);
  } finally {
    await db.end();
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
