/**
 * One delivery round without HTTP or a database: what is claimed, what is sent, how it is
 * signed and what is recorded, with the clients replaced by fakes.
 */
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { deliverNotifications, type DeliveryDeps } from "./deliver.ts";
import { composeAlertEmail } from "./email.ts";
import type { NotificationSettings } from "./settings.ts";
import type { SqlArgs, SqlFunction, SqlResult } from "../_shared/supabase.ts";

const secret = `whsec_${btoa("unit-test-notification-secret")}`;
const content = {
  organization_id: "org-1",
  organization_name: "Acme <Labs>",
  alert_id: "alert-1",
  kind: "low_balance",
  severity: "warning",
  title: "Credit balance is low",
  message: "The balance fell to 90 credits.",
};

function fakes(settings: Partial<NotificationSettings>, answer: (request: Request) => Response | Promise<Response>) {
  const calls: { fn: string; args: Record<string, unknown> }[] = [];
  const sent: Request[] = [];
  const mails: { to: string; subject: string; text: string }[] = [];
  const deps: DeliveryDeps = {
    settings: { webhookUrl: null, webhookSecret: null, smtpUrl: null, emailFrom: null, appUrl: "https://app.example.com", ...settings },
    rpc: <Fn extends SqlFunction>(fn: Fn, sqlArgs: SqlArgs<Fn>) => {
      const args = sqlArgs as Record<string, unknown>;
      calls.push({ fn, args });
      if (fn === "claim_notifications") {
        return Promise.resolve([{ notification_id: "n-1", attempt: 2, payload: { type: "alert.raised", data: { organization_id: "org-1" } } }] as unknown as SqlResult<Fn>);
      }
      if (fn === "claim_notification_emails") {
        return Promise.resolve([{ email_id: "e-1", attempt: 1, recipient: "owner@example.com", content }] as unknown as SqlResult<Fn>);
      }
      return Promise.resolve((args.p_succeeded ? "delivered" : "pending") as SqlResult<Fn>);
    },
    fetch: async (input, init) => {
      const request = new Request(input, init);
      sent.push(request.clone());
      return await answer(request);
    },
    sendMail: (message) => {
      mails.push(message);
      return Promise.resolve();
    },
    now: () => new Date(),
    log: () => {},
  };
  return { deps, calls, sent, mails };
}

Deno.test("without BILLING_WEBHOOK_URL or SMTP_URL nothing is claimed, so nothing is used up or lost", async () => {
  const { deps, calls } = fakes({}, () => new Response(null, { status: 200 }));
  assert.deepEqual(await deliverNotifications(deps), { delivered: 0, failed: 0, retried: 0, emailed: 0 });
  assert.deepEqual(calls, []);
});

Deno.test("a notification is POSTed signed as Standard Webhooks, with its outbox id as webhook-id", async () => {
  const { deps, sent, calls } = fakes(
    { webhookUrl: "https://saas.example.com/hooks", webhookSecret: secret },
    () => new Response(null, { status: 204 }),
  );
  assert.deepEqual(await deliverNotifications(deps), { delivered: 1, failed: 0, retried: 0, emailed: 0 });
  const request = sent[0]!;
  assert.equal(request.headers.get("webhook-id"), "n-1");
  const verified = new Webhook(secret).verify(await request.text(), Object.fromEntries(request.headers));
  assert.deepEqual(verified, { type: "alert.raised", data: { organization_id: "org-1" } });
  assert.deepEqual(calls.at(-1)!.args, {
    p_channel: "webhook",
    p_id: "n-1",
    p_attempt: 2,
    p_succeeded: true,
    p_response_status: 204,
    p_error: null,
  });
});

Deno.test("a non-2xx answer or an unreachable receiver is recorded as a failed attempt to retry", async () => {
  for (const answer of [() => new Response("down", { status: 503 }), () => Promise.reject(new TypeError("connection refused"))]) {
    const { deps, calls } = fakes({ webhookUrl: "https://saas.example.com/hooks", webhookSecret: secret }, answer);
    assert.deepEqual(await deliverNotifications(deps), { delivered: 0, failed: 0, retried: 1, emailed: 0 });
    const recorded = calls.at(-1)!.args;
    assert.equal(recorded.p_succeeded, false);
    assert.ok(String(recorded.p_error).length > 0, "the error is recorded");
  }
});

Deno.test("an alert email goes to its recipient from EMAIL_FROM, with a link to the dashboard", async () => {
  const { deps, mails } = fakes(
    { smtpUrl: "smtp://127.0.0.1:1", emailFrom: "Billing <billing@example.com>" },
    () => new Response(null, { status: 200 }),
  );
  assert.deepEqual(await deliverNotifications(deps), { delivered: 0, failed: 0, retried: 0, emailed: 1 });
  assert.equal(mails[0]!.to, "owner@example.com");
  assert.equal(mails[0]!.subject, "[Acme <Labs>] Credit balance is low");
  assert.match(mails[0]!.text, /Open the billing dashboard: https:\/\/app\.example\.com\//);
});

Deno.test("the HTML email escapes what members and Stripe wrote", () => {
  const { html } = composeAlertEmail({ ...content, message: `<script>alert("x")</script>` }, "https://app.example.com");
  assert.ok(!html.includes("<script>"));
  assert.match(html, /Acme &lt;Labs&gt;/);
});
