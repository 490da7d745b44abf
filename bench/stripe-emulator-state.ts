/**
 * What keeping the Stripe emulator's state in a file costs: N checkouts (half subscriptions,
 * half credit packs; each a customer, an idempotent Checkout Session and its payment, with
 * every event delivered to a local endpoint) against an emulator in memory and one with a
 * state file, then how long a restart takes to load what they left.
 *
 *   npx tsx bench/stripe-emulator-state.ts [checkouts, default 500]
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import Stripe from "stripe";
import { StateFile } from "../local/stripe-emulator/persistence.ts";
import { startStripeEmulator } from "../local/stripe-emulator/server.ts";

const checkouts = Number(process.argv[2] ?? 500);
const webhookSecret = "whsec_bench_state";

const endpoint = createServer((request, response) => {
  request.resume();
  request.on("end", () => response.writeHead(200).end());
});
await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
const webhookUrl = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/webhook`;

interface Run {
  label: string;
  totalMs: number;
  requests: number;
  events: number;
}

async function run(label: string, stateFile?: string): Promise<Run> {
  const emulator = await startStripeEmulator({ port: 0, webhookUrl, webhookSecret, ...(stateFile ? { stateFile } : {}) });
  const stripe = new Stripe("sk_test_bench", { host: "127.0.0.1", port: emulator.port, protocol: "http", maxNetworkRetries: 0 });
  const pack = await stripe.prices.create({ product_data: { name: "pack" }, currency: "usd", unit_amount: 1000 });
  const monthly = await stripe.prices.create({ product_data: { name: "plan" }, currency: "usd", unit_amount: 2900, recurring: { interval: "month" } });
  let requests = 2;
  const started = performance.now();
  for (let i = 0; i < checkouts; i++) {
    const subscription = i % 2 === 0;
    const customer = await stripe.customers.create({ email: `org-${i}@bench.test`, metadata: { organization_id: `org_${i}` } });
    const session = await stripe.checkout.sessions.create(
      { mode: subscription ? "subscription" : "payment", customer: customer.id, line_items: [{ price: subscription ? monthly.id : pack.id, quantity: 1 }], success_url: "http://app.test/billing" },
      { idempotencyKey: `checkout-${i}` },
    );
    const paid = await fetch(`${emulator.url}/_emulator/checkout/${session.id}/pay`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ card_number: "4242424242424242" }) });
    if (paid.status !== 200) throw new Error(await paid.text());
    requests += 3;
  }
  // The API calls' time; deliveries run alongside and are waited for after.
  const totalMs = performance.now() - started;
  await emulator.webhooksIdle();
  const events = emulator.store.events.length;
  await emulator.stop();
  return { label, totalMs, requests, events };
}

// Time spent saving (collecting changes, appending, fsync, compacting), measured where it happens.
const saving = { ms: 0, calls: 0 };
const save = StateFile.prototype.save;
StateFile.prototype.save = function timedSave(this: StateFile) {
  const started = performance.now();
  try {
    save.call(this);
  } finally {
    saving.ms += performance.now() - started;
    saving.calls += 1;
  }
};
const compacting = { ms: 0, calls: 0 };
const prototype = StateFile.prototype as unknown as { compact(this: StateFile): void };
const compact = prototype.compact;
prototype.compact = function timedCompact(this: StateFile) {
  const started = performance.now();
  try {
    compact.call(this);
  } finally {
    compacting.ms += performance.now() - started;
    compacting.calls += 1;
  }
};

const directory = mkdtempSync(path.join(tmpdir(), "stripe-emulator-bench-"));
const stateFile = path.join(directory, "state.jsonl");
try {
  const memory = await run("in memory");
  const persisted = await run("state file", stateFile);
  const size = statSync(stateFile).size;
  const loadStarted = performance.now();
  const restarted = await startStripeEmulator({ port: 0, stateFile });
  const loadMs = performance.now() - loadStarted;
  await restarted.stop();

  console.log(`${checkouts} checkouts (${memory.requests} API calls, ${memory.events} events delivered), node ${process.version}, ${process.platform}-${process.arch}\n`);
  console.log("| emulator | API calls, total | per checkout | per API call |");
  console.log("|---|---|---|---|");
  for (const r of [memory, persisted]) {
    console.log(`| ${r.label} | ${(r.totalMs / 1000).toFixed(2)} s | ${(r.totalMs / checkouts).toFixed(2)} ms | ${(r.totalMs / r.requests).toFixed(2)} ms |`);
  }
  const appendMs = saving.ms - compacting.ms;
  console.log(`\nsaving: ${(saving.ms / 1000).toFixed(2)} s in ${saving.calls} saves (one per API call, plus delivery outcomes coalesced over 200 ms)`);
  console.log(`  appends (collect changes, write, fsync): ${(appendMs / saving.calls).toFixed(2)} ms per save`);
  console.log(`  compactions (whole state to a temporary file, fsync, rename): ${compacting.calls}, ${(compacting.ms / Math.max(1, compacting.calls)).toFixed(0)} ms each (the one at the restart below included)`);
  console.log(`state file after compaction: ${(size / 1024 / 1024).toFixed(1)} MiB; restart (load + compact) ${loadMs.toFixed(0)} ms`);
} finally {
  endpoint.close();
  rmSync(directory, { recursive: true, force: true });
}
