/**
 * One delivery round: claim what is due from both outboxes, send each (webhooks signed as
 * Standard Webhooks specifies, emails through SMTP), and record every attempt so the database
 * schedules the retry or marks the row delivered or failed. Pure of HTTP and clients: the
 * handler passes them in, so this is tested without either.
 */
import { Webhook } from "standardwebhooks";
import { type AlertEmailContent, composeAlertEmail, type ComposedEmail } from "./email.ts";
import type { NotificationSettings } from "./settings.ts";
import type { SqlArgs, SqlFunction, SqlResult } from "../_shared/supabase.ts";

export interface DeliveryCounts {
  /** Webhook notifications the receiver accepted (2xx). */
  delivered: number;
  /** Webhooks and emails whose last retry failed (marked failed). */
  failed: number;
  /** Webhooks and emails that failed this time and will be retried. */
  retried: number;
  /** Emails the SMTP server accepted. */
  emailed: number;
}

export interface DeliveryDeps {
  settings: NotificationSettings;
  /** Calls a service-role SQL function through the generated database types. */
  rpc: <Fn extends SqlFunction>(fn: Fn, args: SqlArgs<Fn>) => Promise<SqlResult<Fn>>;
  fetch: typeof fetch;
  /** Sends one email; resolves when the SMTP server accepted it. */
  sendMail: (message: { from: string; to: string } & ComposedEmail) => Promise<void>;
  now: () => Date;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

/** Rows claimed per round and channel. */
const BATCH = 50;
/** How long a receiver may take to answer (well inside the claim's two-minute lease). */
const WEBHOOK_TIMEOUT_MS = 10_000;

type Status = "pending" | "delivered" | "failed";

interface ClaimedNotification {
  notification_id: string;
  attempt: number;
  payload: Record<string, unknown>;
}

interface ClaimedEmail {
  email_id: string;
  attempt: number;
  recipient: string;
  content: AlertEmailContent;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** POSTs one notification, signed; resolves to the outcome to record. */
async function postWebhook(deps: DeliveryDeps, webhook: Webhook, claimed: ClaimedNotification) {
  const body = JSON.stringify(claimed.payload);
  const timestamp = deps.now();
  // The id is the outbox row's: the same on every retry, so the receiver can deduplicate.
  const signature = webhook.sign(claimed.notification_id, timestamp, body);
  try {
    const response = await deps.fetch(deps.settings.webhookUrl!, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "webhook-id": claimed.notification_id,
        "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
        "webhook-signature": signature,
      },
      body,
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.ok
      ? { succeeded: true, status: response.status, error: null }
      : { succeeded: false, status: response.status, error: `HTTP ${response.status}` };
  } catch (error) {
    return { succeeded: false, status: null, error: describe(error) };
  }
}

/** Runs one round over both outboxes and returns what happened. */
export async function deliverNotifications(deps: DeliveryDeps): Promise<DeliveryCounts> {
  const counts: DeliveryCounts = { delivered: 0, failed: 0, retried: 0, emailed: 0 };
  const record = async (channel: "webhook" | "email", id: string, attempt: number, outcome: {
    succeeded: boolean;
    status: number | null;
    error: string | null;
  }) => {
    const status: Status = await deps.rpc("record_notification_attempt", {
      p_channel: channel,
      p_id: id,
      p_attempt: attempt,
      p_succeeded: outcome.succeeded,
      p_response_status: outcome.status,
      p_error: outcome.error,
    });
    if (outcome.succeeded) counts[channel === "webhook" ? "delivered" : "emailed"]++;
    else if (status === "failed") counts.failed++;
    else counts.retried++;
    if (!outcome.succeeded) deps.log("notification attempt failed", { channel, id, attempt, status, error: outcome.error });
  };

  const { settings } = deps;
  // Without a destination the rows stay pending (not claimed, so no attempt is used up).
  if (settings.webhookUrl && settings.webhookSecret) {
    const webhook = new Webhook(settings.webhookSecret);
    const claimed = await deps.rpc("claim_notifications", { p_limit: BATCH }) as ClaimedNotification[];
    await Promise.all(claimed.map(async (row) => {
      await record("webhook", row.notification_id, row.attempt, await postWebhook(deps, webhook, row));
    }));
  }

  if (settings.smtpUrl && settings.emailFrom) {
    // The content is the object the outbox trigger wrote (AlertEmailContent); the generated
    // types only know it as JSON.
    const claimed: ClaimedEmail[] = (await deps.rpc("claim_notification_emails", { p_limit: BATCH }))
      .map((row) => ({ ...row, content: row.content as unknown as AlertEmailContent }));
    // One at a time: SMTP servers throttle bursts from one client, and alerts are few.
    for (const row of claimed) {
      let outcome: { succeeded: boolean; status: number | null; error: string | null };
      try {
        await deps.sendMail({ from: settings.emailFrom, to: row.recipient, ...composeAlertEmail(row.content, settings.appUrl) });
        outcome = { succeeded: true, status: null, error: null };
      } catch (error) {
        outcome = { succeeded: false, status: null, error: describe(error) };
      }
      await record("email", row.email_id, row.attempt, outcome);
    }
  }
  return counts;
}
