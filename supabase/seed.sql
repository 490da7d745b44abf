-- Seed: the catalog the product ships with. Idempotent: re-running it updates the rows in
-- place (by code / event key) and never duplicates them. Stripe price ids stay null here;
-- `npm start` (or your deploy script) fills them in from the Stripe account it talks to.

insert into public.subscription_plans
  (code, name, description, currency, monthly_unit_amount, annual_unit_amount,
   monthly_credits, annual_credits, features, trial_days, trial_credits, sort_order)
values
  ('starter', 'Starter', 'For side projects and small teams getting started.', 'usd',
   1900, 19000, 1000, 12000,
   '["1,000 credits every month", "Email support", "1 organization admin"]', 14, 500, 10),
  ('professional', 'Professional', 'For growing teams with steady usage.', 'usd',
   4900, 49000, 5000, 60000,
   '["5,000 credits every month", "Priority email support", "Unlimited admins", "Usage analytics"]', 14, 2500, 20),
  ('enterprise', 'Enterprise', 'For organizations with heavy, business-critical usage.', 'usd',
   19900, 199000, 25000, 300000,
   '["25,000 credits every month", "Dedicated support", "Unlimited admins", "Usage analytics", "Custom invoicing"]', 0, 0, 30)
on conflict (code) do update set
  name = excluded.name,
  description = excluded.description,
  currency = excluded.currency,
  monthly_unit_amount = excluded.monthly_unit_amount,
  annual_unit_amount = excluded.annual_unit_amount,
  monthly_credits = excluded.monthly_credits,
  annual_credits = excluded.annual_credits,
  features = excluded.features,
  trial_days = excluded.trial_days,
  trial_credits = excluded.trial_credits,
  sort_order = excluded.sort_order;

insert into public.credit_products (code, name, description, credits, currency, unit_amount, sort_order)
values
  ('credits_1000', '1,000 credits', 'A top-up for occasional spikes.', 1000, 'usd', 1000, 10),
  ('credits_5000', '5,000 credits', 'Five thousand credits at a 10% discount.', 5000, 'usd', 4500, 20),
  ('credits_20000', '20,000 credits', 'Twenty thousand credits at a 20% discount.', 20000, 'usd', 16000, 30)
on conflict (code) do update set
  name = excluded.name,
  description = excluded.description,
  credits = excluded.credits,
  currency = excluded.currency,
  unit_amount = excluded.unit_amount,
  sort_order = excluded.sort_order;

insert into public.credit_events (event_key, name, description, credit_cost)
values
  ('api_call_basic', 'Basic API call', 'One call to a standard API endpoint.', 1),
  ('api_call_premium', 'Premium API call', 'One call to a premium API endpoint.', 5),
  ('storage_gb_month', 'Storage (GB-month)', 'One gigabyte stored for a month.', 10),
  ('ai_inference', 'AI inference', 'One AI model inference request.', 25)
on conflict (event_key) do update set
  name = excluded.name,
  description = excluded.description,
  credit_cost = excluded.credit_cost;
