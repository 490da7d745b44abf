/**
 * Notifications delivered per second by `POST /functions/v1/notifications/deliver` (through the
 * gateway, service role key, one round after another as the scheduler calls it) to a receiver
 * that verifies nothing (bench/notification-receiver.ts), with 2,000 outbox rows prepared, one
 * per organization. The baseline, in the same run and to the same receiver: the same bodies
 * signed with standardwebhooks and POSTed from a plain loop, 50 at a time as a round sends them,
 * with no outbox at all. The ratio is what the outbox costs on top of sending (claiming, the
 * gateway hop, recording each attempt durably).
 */
import { Webhook } from "standardwebhooks";
import { apiKeys } from "../local/gateway/keys.ts";
import { benchmark } from "./support/benchmark.ts";
import { startGateway, startServer, type Server } from "./support/servers.ts";

const NOTIFICATIONS = 2_000;
/** A delivery round's batch (functions/notifications/deliver.ts BATCH): the baseline sends as many at once. */
const NOTIFICATION_BATCH = 50;
const BENCH_NOTIFICATION_SECRET = "whsec_" + Buffer.from("bench notification signing secret").toString("base64");

export interface NotificationsRow {
  scenario: string;
  notifications: number;
  deliveredPerSecond: number;
  baselinePerSecond: number;
  ratio: number;
  /** Delivery rounds (POST /notifications/deliver) the function needed per run. */
  rounds: number;
  undelivered: number;
}

export default benchmark<NotificationsRow>({
  section: "notifications",
  title: "Notifications delivered by POST /functions/v1/notifications/deliver vs plain signed POSTs to the same receiver",
  async run({ db, databaseUrl }) {
    const receiver = await startServer("bench/notification-receiver.ts", {}, /listening on (\S+)/);
    let gateway: Server | undefined;
    try {
      gateway = await startGateway(databaseUrl, { notifications: "functions/notifications/index.ts" }, {
        STRIPE_SECRET_KEY: "sk_test_unused",
        STRIPE_WEBHOOK_SECRET: "whsec_bench_unused",
        APP_URL: "http://127.0.0.1:5173",
        BILLING_WEBHOOK_URL: receiver.url,
        BILLING_WEBHOOK_SECRET: BENCH_NOTIFICATION_SECRET,
        SMTP_URL: "",
      });
      const gatewayUrl = gateway.url;
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
        const response = await fetch(`${gatewayUrl}/functions/v1/notifications/deliver`, {
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
    }
  },
  table: (n) => [
    "| notifications | rows | delivered/s | plain signed POSTs/s | ratio | rounds |",
    "|---|---:|---:|---:|---:|---:|",
    `| ${n.scenario} | ${n.notifications} | ${n.deliveredPerSecond.toFixed(0)} | ${n.baselinePerSecond.toFixed(0)} | ${n.ratio.toFixed(2)} | ${n.rounds} |`,
  ],
});
