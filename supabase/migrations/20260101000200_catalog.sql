-- Catalog: what can be bought and what usage costs. Subscription plans (mirrored to Stripe
-- prices), credit packs, and the metered events that consume credits. Everyone can read the
-- active catalog (it is the pricing page); only the service role edits it.

-- ============================================================================
-- Tables
-- ============================================================================

create table public.subscription_plans (
  id uuid primary key default gen_random_uuid(),
  code text not null unique check (code ~ '^[a-z][a-z0-9_-]{0,63}$'),
  name text not null check (char_length(name) between 1 and 200),
  description text not null default '',
  currency text not null default 'usd' check (currency ~ '^[a-z]{3}$'),
  monthly_unit_amount integer not null check (monthly_unit_amount >= 0),
  annual_unit_amount integer not null check (annual_unit_amount >= 0),
  stripe_product_id text unique,
  stripe_monthly_price_id text unique,
  stripe_annual_price_id text unique,
  monthly_credits integer not null check (monthly_credits >= 0),
  annual_credits integer not null check (annual_credits >= 0),
  features jsonb not null default '[]' check (jsonb_typeof(features) = 'array'),
  trial_days integer not null default 0 check (trial_days between 0 and 730),
  is_active boolean not null default true,
  sort_order integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.subscription_plans enable row level security;

comment on table public.subscription_plans is 'Subscription plans offered on the pricing page, each backed by Stripe prices.';
comment on column public.subscription_plans.monthly_unit_amount is
  'Price per month in the currency''s minor unit (Stripe "unit_amount": cents for usd).';
comment on column public.subscription_plans.annual_unit_amount is
  'Price per year in the currency''s minor unit (Stripe "unit_amount").';
comment on column public.subscription_plans.monthly_credits is
  'Subscription credits allocated on each paid monthly invoice; they expire at the period end.';
comment on column public.subscription_plans.annual_credits is
  'Subscription credits allocated on each paid annual invoice; they expire at the period end.';
comment on column public.subscription_plans.features is 'JSON array of feature descriptions shown on the pricing page.';
comment on column public.subscription_plans.trial_days is 'Free trial length for new subscriptions (0 = no trial).';

create table public.credit_events (
  id uuid primary key default gen_random_uuid(),
  event_key text not null unique check (event_key ~ '^[a-z][a-z0-9_.:-]{0,63}$'),
  name text not null check (char_length(name) between 1 and 200),
  description text not null default '',
  credit_cost integer not null check (credit_cost > 0),
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.credit_events enable row level security;

comment on table public.credit_events is 'Metered usage events and what one unit of each costs in credits.';
comment on column public.credit_events.credit_cost is 'Credits consumed per unit of quantity.';

create table public.credit_products (
  id uuid primary key default gen_random_uuid(),
  code text not null unique check (code ~ '^[a-z][a-z0-9_-]{0,63}$'),
  name text not null check (char_length(name) between 1 and 200),
  description text not null default '',
  credits integer not null check (credits > 0),
  currency text not null default 'usd' check (currency ~ '^[a-z]{3}$'),
  unit_amount integer not null check (unit_amount >= 0),
  stripe_product_id text unique,
  stripe_price_id text unique,
  is_active boolean not null default true,
  sort_order integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.credit_products enable row level security;

comment on table public.credit_products is 'One-off credit packs. Purchased credits never expire.';
comment on column public.credit_products.unit_amount is 'Price in the currency''s minor unit (Stripe "unit_amount").';

-- ============================================================================
-- Indexes
-- ============================================================================

create index subscription_plans_active_sort_idx on public.subscription_plans (sort_order) where is_active;
create index credit_products_active_sort_idx on public.credit_products (sort_order) where is_active;

-- ============================================================================
-- Triggers
-- ============================================================================

create trigger subscription_plans_touch_updated_at before update on public.subscription_plans
  for each row execute function private.touch_updated_at();
create trigger credit_events_touch_updated_at before update on public.credit_events
  for each row execute function private.touch_updated_at();
create trigger credit_products_touch_updated_at before update on public.credit_products
  for each row execute function private.touch_updated_at();

-- ============================================================================
-- RLS policies and privileges
-- ============================================================================

create policy "Visitors can read active plans"
  on public.subscription_plans for select to anon
  using (is_active);

-- Widened in the subscriptions migration to the plans members' organizations subscribe to.
create policy "Signed-in users can read active plans"
  on public.subscription_plans for select to authenticated
  using (is_active);

create policy "Anyone can read active credit events"
  on public.credit_events for select to anon, authenticated
  using (is_active);

create policy "Anyone can read active credit products"
  on public.credit_products for select to anon, authenticated
  using (is_active);

revoke insert, update, delete, truncate on public.subscription_plans, public.credit_events,
  public.credit_products from anon, authenticated;

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * Remembers the Stripe price (and product) of a plan interval or a credit pack, created on
 * first use by the billing API. Service role only. A price already remembered is kept (the
 * first writer wins, so concurrent first uses converge) and returned.
 */
create function public.remember_stripe_price(
  p_kind text,
  p_code text,
  p_interval text,
  p_stripe_price_id text,
  p_stripe_product_id text
) returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_price text;
begin
  perform private.require_service();
  if p_stripe_price_id is null or p_stripe_price_id !~ '^price_[A-Za-z0-9_]+$' then
    raise exception 'price id must be a Stripe price id (price_...)' using errcode = '22023';
  end if;
  if p_stripe_product_id is not null and p_stripe_product_id !~ '^prod_[A-Za-z0-9_]+$' then
    raise exception 'product id must be a Stripe product id (prod_...)' using errcode = '22023';
  end if;
  if p_kind = 'plan' and p_interval in ('month', 'year') then
    update public.subscription_plans p
       set stripe_monthly_price_id = case when p_interval = 'month' then coalesce(p.stripe_monthly_price_id, p_stripe_price_id) else p.stripe_monthly_price_id end,
           stripe_annual_price_id = case when p_interval = 'year' then coalesce(p.stripe_annual_price_id, p_stripe_price_id) else p.stripe_annual_price_id end,
           stripe_product_id = coalesce(p.stripe_product_id, p_stripe_product_id)
     where p.code = p_code
    returning case when p_interval = 'month' then p.stripe_monthly_price_id else p.stripe_annual_price_id end into v_price;
  elsif p_kind = 'credit_product' and p_interval is null then
    update public.credit_products p
       set stripe_price_id = coalesce(p.stripe_price_id, p_stripe_price_id),
           stripe_product_id = coalesce(p.stripe_product_id, p_stripe_product_id)
     where p.code = p_code
    returning p.stripe_price_id into v_price;
  else
    raise exception 'kind must be plan (with interval month or year) or credit_product (without)' using errcode = '22023';
  end if;
  if v_price is null then
    raise exception '% % not found', p_kind, coalesce(p_code, 'null') using errcode = 'PT404';
  end if;
  return v_price;
end;
$$;
comment on function public.remember_stripe_price(text, text, text, text, text) is
  'Service role: stores the Stripe price of a plan interval or credit pack; the first one stored wins.';
revoke all on function public.remember_stripe_price(text, text, text, text, text) from public, anon, authenticated;
grant execute on function public.remember_stripe_price(text, text, text, text, text) to service_role;
