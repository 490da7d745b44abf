/**
 * What the Edge Function suites share: the running stack (`npm test` passes its URLs and keys
 * in TEST_* variables), members who sign up through Auth, the billing API as they call it,
 * the Stripe emulator's API and controls, signed webhook deliveries, and polling for the
 * effects of webhooks, which are applied asynchronously.
 */
import Stripe from "stripe";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";

export function required(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`${name} is not set: run the suites through \`npm test\`.`);
  return value;
}

export const supabaseUrl = required("TEST_SUPABASE_URL");
export const anonKey = required("TEST_SUPABASE_ANON_KEY");
export const serviceKey = required("TEST_SUPABASE_SERVICE_ROLE_KEY");
export const stripeBase = required("TEST_STRIPE_API_BASE");
export const webhookSecret = required("TEST_STRIPE_WEBHOOK_SECRET");
export const webhookUrl = `${supabaseUrl}/functions/v1/stripe-webhook`;

const noSession = { auth: { persistSession: false, autoRefreshToken: false } };

/** The platform's view of every row (RLS bypassed), for checking what was written. */
export const db: SupabaseClient = createClient(supabaseUrl, serviceKey, noSession);

/** The real stripe client pointed at the emulator, as the functions use it. */
export const stripe = (() => {
  const base = new URL(stripeBase);
  return new Stripe("sk_test_local_emulator", {
    httpClient: Stripe.createFetchHttpClient(),
    host: base.hostname,
    port: Number(base.port),
    protocol: "http",
    maxNetworkRetries: 0,
  });
})();

export interface Member {
  client: SupabaseClient;
  token: string;
  userId: string;
}

export async function signUp(): Promise<Member> {
  const client = createClient(supabaseUrl, anonKey, noSession);
  const email = `member-${crypto.randomUUID()}@functions.test`;
  const { data, error } = await client.auth.signUp({ email, password: "a-long-test-password-1" });
  if (error || !data.session) throw new Error(`sign-up failed: ${error?.message}`);
  return { client, token: data.session.access_token, userId: data.session.user.id };
}

/** A new member who owns a new organization; returns both. */
export async function ownerWithOrganization(name: string): Promise<{ owner: Member; organizationId: string }> {
  const owner = await signUp();
  const { data, error } = await owner.client.rpc("create_organization", { p_name: name });
  if (error) throw new Error(error.message);
  return { owner, organizationId: data as string };
}

/** Calls the billing API as a member; returns the status and the parsed JSON body. */
export async function api(member: Member, method: string, path: string, body?: unknown) {
  const response = await fetch(`${supabaseUrl}/functions/v1/billing${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${member.token}`,
      apikey: anonKey,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** POSTs to one of the emulator's controls (or a form to its API); fails on a non-2xx. */
export async function emulator(path: string, params: Record<string, string | boolean | number>) {
  const response = await fetch(`${stripeBase}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer sk_test_local_emulator" },
    body: JSON.stringify(params),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`emulator ${path} answered ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

/** Pays a Checkout Session (what the hosted page's submit does). */
export async function payCheckout(checkoutUrl: string, cardNumber = "4242424242424242") {
  const sessionId = new URL(checkoutUrl).pathname.split("/").pop()!;
  return await emulator(`/_emulator/checkout/${sessionId}/pay`, { card_number: cardNumber });
}

/** Submits one of the hosted portal's forms, as a browser would; fails unless it succeeded. */
export async function portalAction(portalUrl: string, form: Record<string, string>) {
  const response = await fetch(portalUrl, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
    redirect: "manual",
  });
  await response.body?.cancel();
  const location = response.headers.get("location") ?? "";
  if (response.status !== 303 || /error=/.test(location)) {
    throw new Error(`portal ${form.action} failed: ${response.status} ${location}`);
  }
}

/** Polls until `check` returns a value (webhooks apply asynchronously), or fails after a while. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

/**
 * Runs the subscription's test clock one billing event at a time (trial reminder, trial end,
 * renewal, retry) until `reached` returns a value, giving each step `settleMs` to show.
 */
export async function advanceClockUntil<T>(
  subscriptionId: string,
  what: string,
  reached: () => Promise<T | undefined>,
  settleMs = 3_000,
): Promise<T> {
  for (let step = 0; step < 6; step++) {
    await emulator("/_emulator/advance", { subscription: subscriptionId });
    try {
      return await eventually(what, reached, settleMs);
    } catch {
      // Not yet: on to the next billing event.
    }
  }
  throw new Error(`${what}: not reached after six billing events of ${subscriptionId}`);
}

/** A Stripe event as Stripe would send it, for the webhook tests to sign and deliver themselves. */
export { eventPayload } from "./stripe-event-payload.ts";

/** Signs a payload with the stack's webhook secret, as Stripe would. */
export function sign(payload: string, options: { secret?: string; timestamp?: number } = {}) {
  return stripe.webhooks.generateTestHeaderStringAsync({
    payload,
    secret: options.secret ?? webhookSecret,
    timestamp: options.timestamp,
  });
}

/** POSTs a payload to the webhook function with the given signature (or none). */
export async function deliver(payload: string, signature: string | null) {
  const response = await fetch(webhookUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(signature === null ? {} : { "Stripe-Signature": signature }) },
    body: payload,
  });
  return { status: response.status, body: await response.json() };
}

/** Delivers a Stripe event, freshly signed, as Stripe would on each attempt. */
export async function deliverEvent(event: Stripe.Event) {
  // The emulator lists its delivery log beside Stripe's fields; Stripe would not send it.
  const { emulator_delivery_attempts: _log, ...stripeFields } = event as Stripe.Event & { emulator_delivery_attempts?: unknown };
  const payload = JSON.stringify(stripeFields, null, 2);
  return await deliver(payload, await sign(payload));
}

/** Every event the emulator has created that concerns this customer, oldest first. */
export async function eventsOfCustomer(customerId: string): Promise<Stripe.Event[]> {
  const all = await stripe.events.list({ limit: 100 }).autoPagingToArray({ limit: 10_000 });
  return all.filter((event) => JSON.stringify(event.data.object).includes(customerId)).reverse();
}

/** Switches the emulator's webhook delivery on or off (other switches unchanged). */
export async function setDelivery(enabled: boolean) {
  await emulator("/_emulator/webhooks", { enabled });
}

/** Sets the emulator's API fault switch. */
export async function setStripeFault(api: "ok" | "down" | "error" | "slow", delayMs?: number) {
  await emulator("/_emulator/faults", { api, ...(delayMs === undefined ? {} : { delay_ms: delayMs }) });
}

/**
 * Waits until the emulator has delivered every event about this customer (2xx received) and
 * the webhook has applied each of them (the answer comes before the apply).
 */
export async function deliveredAll(customerId: string) {
  await eventually(`every event of ${customerId} to be delivered`, async () => {
    // Only the events still waiting for a 2xx, not the whole history, on every poll.
    const pending = await stripe.events.list({ delivery_success: false, limit: 100 }).autoPagingToArray({ limit: 10_000 });
    return pending.some((event) => JSON.stringify(event.data.object).includes(customerId)) ? undefined : true;
  }, 30_000);
  await appliedAll((await eventsOfCustomer(customerId)).map((event) => event.id));
}

/**
 * Waits until every one of these events is in the inbox and no longer `received`: the webhook
 * acknowledges an event once it is stored and applies it in the background.
 */
export async function appliedAll(eventIds: string[]) {
  await eventually(`${eventIds.length} events to be applied`, async () => {
    const { data, error } = await db.from("stripe_events").select("id, status").in("id", eventIds);
    if (error) throw new Error(error.message);
    return data.length === new Set(eventIds).size && data.every((row) => row.status !== "received") ? true : undefined;
  }, 30_000);
}

/** An event's row in the webhook inbox, or null. */
export async function inboxRow(eventId: string) {
  const { data, error } = await db.from("stripe_events").select("status, attempts, last_error").eq("id", eventId).maybeSingle();
  if (error) throw new Error(error.message);
  return data;
}

/** Runs the webhook's inbox sweep as the scheduled job does (service role); returns its counts. */
export async function sweepInbox(options: { older_than_seconds?: number; limit?: number; [other: string]: unknown } = {}, key = serviceKey) {
  const response = await fetch(`${webhookUrl}/sweep`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify(options),
  });
  return { status: response.status, body: await response.json() };
}

export async function balance(member: Member, organizationId: string) {
  const { data, error } = await member.client.rpc("get_credit_balance", { p_organization_id: organizationId });
  if (error) throw new Error(error.message);
  return data as { total: number; purchased: number; subscription: number };
}

export async function latestSubscription(member: Member, organizationId: string) {
  const { data, error } = await member.client.from("organization_subscriptions")
    .select("status, stripe_subscription_id, grace_period_end, cancel_at_period_end")
    .eq("organization_id", organizationId).order("created_at", { ascending: false }).limit(1).maybeSingle();
  if (error) throw new Error(error.message);
  return data;
}

/** The Stripe customers the emulator holds for an organization (by the metadata we set). */
export async function customersOf(organizationId: string): Promise<string[]> {
  const found = await stripe.customers.search({ query: `metadata['organization_id']:'${organizationId}'` });
  return found.data.map((customer) => customer.id);
}
