-- Subscriptions: each organization's Stripe subscription as our webhook last applied it.
-- Stripe is the source of truth; this table is the copy the dashboard and the credit rules
-- read. Only the service role (the webhook) writes it.

-- ============================================================================
-- Types
-- ============================================================================

create type public.subscription_status as enum (
  'trialing', 'active', 'past_due', 'canceled', 'expired',
  'incomplete', 'incomplete_expired', 'unpaid', 'paused'
);
comment on type public.subscription_status is
  'Stripe subscription statuses, plus expired: a past-due subscription whose grace period ran out.';

create type public.billing_interval as enum ('month', 'year');

-- ============================================================================
-- Tables
-- ============================================================================

create table public.organization_subscriptions (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  plan_id uuid references public.subscription_plans (id) on delete restrict,
  billing_interval public.billing_interval not null,
  status public.subscription_status not null,
  stripe_subscription_id text not null unique,
  stripe_customer_id text not null,
  stripe_price_id text,
  current_period_start timestamptz,
  current_period_end timestamptz,
  trial_start timestamptz,
  trial_end timestamptz,
  cancel_at_period_end boolean not null default false,
  cancel_at timestamptz,
  canceled_at timestamptz,
  ended_at timestamptz,
  grace_period_end timestamptz,
  last_stripe_event_at timestamptz,
  last_stripe_event_id text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (current_period_end is null or current_period_start is null or current_period_end >= current_period_start)
);
alter table public.organization_subscriptions enable row level security;

comment on table public.organization_subscriptions is
  'Stripe subscriptions by organization, as applied from webhooks (re-read from Stripe, applied in order).';
comment on column public.organization_subscriptions.plan_id is
  'Plan whose Stripe price the subscription uses; null if the price is not in our catalog.';
comment on column public.organization_subscriptions.current_period_start is
  'Stripe: start of the current period (on current API versions read from the subscription item).';
comment on column public.organization_subscriptions.current_period_end is
  'Stripe: end of the current period; subscription credits allocated for it expire then.';
comment on column public.organization_subscriptions.trial_end is 'Stripe "trial_end"; null when there is no trial. No default on purpose.';
comment on column public.organization_subscriptions.cancel_at_period_end is
  'Stripe: "If the subscription has been canceled with the at_period_end flag set to true".';
comment on column public.organization_subscriptions.canceled_at is 'Stripe "canceled_at"; null while not canceled. No default on purpose.';
comment on column public.organization_subscriptions.grace_period_end is
  'Set when a payment fails: the end of the grace period during which the organization keeps full access while Stripe retries.';
comment on column public.organization_subscriptions.last_stripe_event_at is
  'Creation time of the newest Stripe event applied to this row; older events never overwrite newer state.';

-- ============================================================================
-- Indexes
-- ============================================================================

create index organization_subscriptions_organization_id_idx
  on public.organization_subscriptions (organization_id, created_at desc);
create index organization_subscriptions_plan_id_idx on public.organization_subscriptions (plan_id);
create index organization_subscriptions_stripe_customer_id_idx
  on public.organization_subscriptions (stripe_customer_id);
-- At most one subscription per organization that is still live (or could become live).
create unique index organization_subscriptions_one_live_per_organization
  on public.organization_subscriptions (organization_id)
  where status in ('trialing', 'active', 'past_due', 'unpaid', 'incomplete', 'paused');

create trigger organization_subscriptions_touch_updated_at before update on public.organization_subscriptions
  for each row execute function private.touch_updated_at();

-- ============================================================================
-- RLS policies and privileges
-- ============================================================================

create policy "Members can read their organization's subscriptions"
  on public.organization_subscriptions for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

-- A retired plan stays visible to the organizations still subscribed to it. One policy
-- (not two permissive ones) so Postgres evaluates a single expression per row.
alter policy "Signed-in users can read active plans" on public.subscription_plans
  using (is_active or id in (
    select s.plan_id from public.organization_subscriptions s
     where s.organization_id in (select private.current_user_organization_ids())
  ));
alter policy "Signed-in users can read active plans" on public.subscription_plans
  rename to "Members can read active plans and the plan they subscribe to";

revoke insert, update, delete, truncate on public.organization_subscriptions from anon, authenticated;
revoke all on public.organization_subscriptions from anon;
