/** Events: retrieve and list, each with the emulator's delivery log beside Stripe's fields. */
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, type Json, listOf } from "../api.ts";
import { resourceMissing } from "../errors.ts";
import { bool, expand, pagination, parseParams, str } from "../form.ts";
import type { Resources } from "./index.ts";

/** The event as the API shows it, with the emulator's delivery log beside Stripe's fields. */
function eventView(stored: { event: Stripe.EventBase; deliveries: unknown[] }): Json {
  return { ...stored.event, emulator_delivery_attempts: stored.deliveries };
}

export function mountEvents({ route }: Api, r: Resources): void {
  const { store } = r;

  route("GET", "/v1/events", (raw) => {
    const p = parseParams(z.object({ ...pagination, type: str.optional(), types: z.array(str).optional(), delivery_success: bool.optional() }).strict(), raw);
    const matchType = (type: string, pattern: string) => (pattern.endsWith(".*") ? type.startsWith(pattern.slice(0, -1)) : type === pattern);
    const all = store.events
      .filter(
        (s) =>
          (p.type === undefined || matchType(s.event.type, p.type)) &&
          (p.types === undefined || p.types.some((t) => matchType(s.event.type, t))) &&
          (p.delivery_success === undefined || (s.event.pending_webhooks === 0) === p.delivery_success),
      )
      .map((s) => ({ id: s.event.id, view: eventView(s) }));
    const list = listOf(all, "/v1/events", p);
    return { ...list, data: list.data.map((x) => x.view) };
  });

  route("GET", "/v1/events/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    const id = c.req.param("id") ?? "";
    const stored = store.eventsById.get(id);
    if (!stored) throw resourceMissing("event", id);
    return eventView(stored);
  });
}
