/**
 * Edge Function `notifications` (verify_jwt = false: the route checks the service role key
 * itself). Wiring only; the behaviour lives in handler.ts and deliver.ts.
 */
import nodemailer from "nodemailer";
import { functionEnv } from "../_shared/env.ts";
import { preflight } from "../_shared/http.ts";
import { rpc, serviceClient } from "../_shared/supabase.ts";
import { createNotificationsHandler } from "./handler.ts";
import { notificationSettings } from "./settings.ts";

const env = functionEnv();
const settings = notificationSettings();
const db = serviceClient();
// Options ride on the URL as nodemailer reads them (e.g. `?pool=true`, `smtps://` for TLS).
const transport = settings.smtpUrl ? nodemailer.createTransport(settings.smtpUrl) : undefined;

const handle = createNotificationsHandler({
  settings,
  serviceRoleKey: env.supabaseServiceRoleKey,
  rpc: (fn, args) => rpc(db, fn, args),
  fetch: (input, init) => fetch(input, init),
  sendMail: async (message) => {
    await transport!.sendMail(message);
  },
  now: () => new Date(),
  log: (message, fields) => console.log(JSON.stringify({ message, ...fields })),
});

Deno.serve((request) => preflight(request) ?? handle(request));
