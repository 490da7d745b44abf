-- Stripe repair: when Stripe no longer has a price or customer the database remembers (another
-- Stripe account or mode, an archived price, a deleted customer, an emulator that lost its
-- state), the billing API makes a new one and these functions put it in place of the old,
-- compare-and-set, so concurrent repairs agree. A replaced price stays known: subscriptions
-- bought at it keep being recognised when Stripe reports on them.

-- ============================================================================
-- Tables
-- ============================================================================

-- Private: only these functions read or write it, so it is not exposed through the API.
create table private.retired_stripe_prices (
  stripe_price_id text primary key check (stripe_price_id ~ '^price_[A-Za-z0-9_]+$'),
  plan_id uuid references public.subscription_plans (id) on delete cascade,
  billing_interval public.billing_interval,
  credit_product_id uuid references public.credit_products (id) on delete cascade,
  retired_at timestamptz not null default now(),
  check ((plan_id is not null and billing_interval is not null and credit_product_id is null)
      or (plan_id is null and billing_interval is null and credit_product_id is not null))
);
-- No policies: nobody but the functions below (running as the owner) reads or writes it.
alter table private.retired_stripe_prices enable row level security;
comment on table private.retired_stripe_prices is
  'Stripe prices our catalog used before it replaced them; subscriptions on them still map to their plan.';

create index retired_stripe_prices_plan_idx on private.retired_stripe_prices (plan_id);
create index retired_stripe_prices_credit_product_idx on private.retired_stripe_prices (credit_product_id);

revoke all on private.retired_stripe_prices from public;

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * The plan and interval a Stripe price belongs to: one of the plan's current prices, or a
 * price it used before. No row for a price that is not ours.
 */
create function private.plan_of_stripe_price(p_stripe_price_id text)
returns table (plan_id uuid, billing_interval public.billing_interval)
language sql
stable
security definer
set search_path = ''
as $$
  select p.id,
         case when p.stripe_annual_price_id = p_stripe_price_id then 'year' else 'month' end::public.billing_interval
    from public.subscription_plans p
   where p_stripe_price_id in (p.stripe_monthly_price_id, p.stripe_annual_price_id)
  union all
  select r.plan_id, r.billing_interval
    from private.retired_stripe_prices r
   where r.stripe_price_id = p_stripe_price_id and r.plan_id is not null
  limit 1
$$;
revoke all on function private.plan_of_stripe_price(text) from public;

/**
 * Replaces the remembered Stripe price of a plan interval or credit pack with a new one, if
 * the remembered price is still p_previous_price_id (compare-and-set: the first repair wins).
 * The previous price is kept as retired. Returns the price remembered afterwards (the new
 * one, or the one another repair put there first). Service role only.
 */
create function public.replace_stripe_price(
  p_kind text,
  p_code text,
  p_interval text,
  p_previous_price_id text,
  p_stripe_price_id text,
  p_stripe_product_id text
) returns text
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_plan public.subscription_plans;
  v_product public.credit_products;
  v_current text;
begin
  perform private.require_service();
  if p_stripe_price_id is null or p_stripe_price_id !~ '^price_[A-Za-z0-9_]+$' then
    raise exception 'price id must be a Stripe price id (price_...)' using errcode = '22023';
  end if;
  if p_previous_price_id is null or p_previous_price_id !~ '^price_[A-Za-z0-9_]+$' then
    raise exception 'previous price id must be a Stripe price id (price_...)' using errcode = '22023';
  end if;
  if p_stripe_product_id is not null and p_stripe_product_id !~ '^prod_[A-Za-z0-9_]+$' then
    raise exception 'product id must be a Stripe product id (prod_...)' using errcode = '22023';
  end if;

  if p_kind = 'plan' and p_interval in ('month', 'year') then
    select * into v_plan from public.subscription_plans p where p.code = p_code for update;
    if v_plan.id is null then
      raise exception 'plan % not found', coalesce(p_code, 'null') using errcode = 'PT404';
    end if;
    v_current := case when p_interval = 'month' then v_plan.stripe_monthly_price_id else v_plan.stripe_annual_price_id end;
    if v_current is distinct from p_previous_price_id then
      return v_current;
    end if;
    insert into private.retired_stripe_prices (stripe_price_id, plan_id, billing_interval)
    values (p_previous_price_id, v_plan.id, p_interval::public.billing_interval)
    on conflict (stripe_price_id) do nothing;
    update public.subscription_plans p
       set stripe_monthly_price_id = case when p_interval = 'month' then p_stripe_price_id else p.stripe_monthly_price_id end,
           stripe_annual_price_id = case when p_interval = 'year' then p_stripe_price_id else p.stripe_annual_price_id end,
           stripe_product_id = coalesce(p_stripe_product_id, p.stripe_product_id)
     where p.id = v_plan.id;
  elsif p_kind = 'credit_product' and p_interval is null then
    select * into v_product from public.credit_products p where p.code = p_code for update;
    if v_product.id is null then
      raise exception 'credit product % not found', coalesce(p_code, 'null') using errcode = 'PT404';
    end if;
    if v_product.stripe_price_id is distinct from p_previous_price_id then
      return v_product.stripe_price_id;
    end if;
    insert into private.retired_stripe_prices (stripe_price_id, credit_product_id)
    values (p_previous_price_id, v_product.id)
    on conflict (stripe_price_id) do nothing;
    update public.credit_products p
       set stripe_price_id = p_stripe_price_id,
           stripe_product_id = coalesce(p_stripe_product_id, p.stripe_product_id)
     where p.id = v_product.id;
  else
    raise exception 'kind must be plan (with interval month or year) or credit_product (without)' using errcode = '22023';
  end if;
  return p_stripe_price_id;
end;
$$;
comment on function public.replace_stripe_price(text, text, text, text, text, text) is
  'Service role: puts a new Stripe price in place of one Stripe no longer has (compare-and-set on the previous id); the old price stays known.';
revoke all on function public.replace_stripe_price(text, text, text, text, text, text) from public, anon, authenticated;
grant execute on function public.replace_stripe_price(text, text, text, text, text, text) to service_role;

/**
 * Replaces the organization's Stripe customer with a new one, if it is still
 * p_previous_customer_id (compare-and-set: the first repair wins). Refused (PT409) while the
 * organization has a live subscription, which is billed to the old customer, and when the new
 * customer is linked to another organization. Returns the customer linked afterwards.
 * Service role only.
 */
create function public.replace_stripe_customer(
  p_organization_id uuid,
  p_previous_customer_id text,
  p_stripe_customer_id text
) returns text
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_current text;
begin
  perform private.require_service();
  if p_stripe_customer_id is null or p_stripe_customer_id !~ '^cus_[A-Za-z0-9_]+$' then
    raise exception 'customer id must be a Stripe customer id (cus_...)' using errcode = '22023';
  end if;
  if p_previous_customer_id is null or p_previous_customer_id !~ '^cus_[A-Za-z0-9_]+$' then
    raise exception 'previous customer id must be a Stripe customer id (cus_...)' using errcode = '22023';
  end if;
  select o.stripe_customer_id into v_current from public.organizations o where o.id = p_organization_id for update;
  if not found then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  if v_current is distinct from p_previous_customer_id then
    return v_current;
  end if;
  if exists (select 1 from public.organization_subscriptions s
              where s.organization_id = p_organization_id
                and s.status in ('trialing', 'active', 'past_due', 'unpaid', 'incomplete', 'paused')) then
    raise exception 'organization has a live subscription on customer %', v_current using errcode = 'PT409';
  end if;
  if exists (select 1 from public.organizations o where o.stripe_customer_id = p_stripe_customer_id and o.id <> p_organization_id) then
    raise exception 'customer % belongs to another organization', p_stripe_customer_id using errcode = 'PT409';
  end if;
  update public.organizations o set stripe_customer_id = p_stripe_customer_id where o.id = p_organization_id;
  return p_stripe_customer_id;
end;
$$;
comment on function public.replace_stripe_customer(uuid, text, text) is
  'Service role: puts a new Stripe customer in place of one Stripe no longer has (compare-and-set; PT409 while a subscription is live).';
revoke all on function public.replace_stripe_customer(uuid, text, text) from public, anon, authenticated;
grant execute on function public.replace_stripe_customer(uuid, text, text) to service_role;

/**
 * apply_stripe_subscription as in the webhooks migration, with one change: the plan of the
 * subscription's price is found among the plan's retired prices too.
 */
create or replace function public.apply_stripe_subscription(
  p_event_id text,
  p_organization_id uuid,
  p_stripe_subscription_id text,
  p_stripe_customer_id text,
  p_stripe_price_id text,
  p_status text,
  p_current_period_start timestamptz,
  p_current_period_end timestamptz,
  p_trial_start timestamptz,
  p_trial_end timestamptz,
  p_cancel_at_period_end boolean,
  p_cancel_at timestamptz,
  p_canceled_at timestamptz,
  p_ended_at timestamptz,
  p_observed_at timestamptz
) returns uuid
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_plan record;
  v_existing record;
  v_status public.subscription_status;
  v_id uuid;
begin
  perform private.require_service();
  if p_stripe_subscription_id is null or p_stripe_subscription_id !~ '^sub_[A-Za-z0-9_]+$' then
    raise exception 'subscription id must be a Stripe subscription id (sub_...)' using errcode = '22023';
  end if;
  if p_stripe_customer_id is null or p_stripe_customer_id !~ '^cus_[A-Za-z0-9_]+$' then
    raise exception 'customer id must be a Stripe customer id (cus_...)' using errcode = '22023';
  end if;
  if p_status is null or p_status not in
     ('trialing', 'active', 'past_due', 'canceled', 'incomplete', 'incomplete_expired', 'unpaid', 'paused') then
    raise exception 'invalid Stripe subscription status %', coalesce(p_status, 'null') using errcode = '22023';
  end if;
  if p_observed_at is null then
    raise exception 'observed_at is required to apply subscription states in order' using errcode = '22023';
  end if;
  if not exists (select 1 from public.organizations o where o.id = p_organization_id) then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;

  -- The plan's current prices, then those it had before (a subscription stays on the
  -- price it was bought at after the catalog moved on to a new one).
  select k.plan_id as id, k.billing_interval into v_plan from private.plan_of_stripe_price(p_stripe_price_id) k;
  if v_plan.id is null then
    -- Parks the event: it will fail the same way until the catalog knows this price.
    raise exception 'price % is not a price of any plan', coalesce(p_stripe_price_id, 'null') using errcode = 'PT404';
  end if;

  -- The organization's lock keeps this and the credit functions in one order.
  perform private.lock_organization(p_organization_id);
  select s.id, s.organization_id, s.status, s.last_stripe_event_at into v_existing
    from public.organization_subscriptions s
   where s.stripe_subscription_id = p_stripe_subscription_id
     for update;

  if v_existing.id is not null and v_existing.organization_id <> p_organization_id then
    raise exception 'subscription % belongs to another organization', p_stripe_subscription_id using errcode = 'PT409';
  end if;
  if v_existing.id is not null and v_existing.last_stripe_event_at > p_observed_at then
    -- A newer state is already applied: this observation is stale.
    perform private.mark_event_processed(p_event_id, p_organization_id);
    return v_existing.id;
  end if;

  -- Deleted stays deleted, whatever a late event says.
  v_status := case when v_existing.status = 'canceled' then 'canceled' else p_status::public.subscription_status end;

  insert into public.organization_subscriptions as s (
    organization_id, plan_id, billing_interval, status, stripe_subscription_id, stripe_customer_id,
    stripe_price_id, current_period_start, current_period_end, trial_start, trial_end,
    cancel_at_period_end, cancel_at, canceled_at, ended_at, last_stripe_event_at, last_stripe_event_id
  ) values (
    p_organization_id, v_plan.id, v_plan.billing_interval, v_status, p_stripe_subscription_id, p_stripe_customer_id,
    p_stripe_price_id, p_current_period_start, p_current_period_end, p_trial_start, p_trial_end,
    coalesce(p_cancel_at_period_end, false), p_cancel_at, p_canceled_at, p_ended_at, p_observed_at, p_event_id
  )
  on conflict (stripe_subscription_id) do update set
    plan_id = excluded.plan_id,
    billing_interval = excluded.billing_interval,
    status = excluded.status,
    stripe_customer_id = excluded.stripe_customer_id,
    stripe_price_id = excluded.stripe_price_id,
    current_period_start = excluded.current_period_start,
    current_period_end = excluded.current_period_end,
    trial_start = excluded.trial_start,
    trial_end = excluded.trial_end,
    cancel_at_period_end = excluded.cancel_at_period_end,
    cancel_at = excluded.cancel_at,
    canceled_at = coalesce(excluded.canceled_at, s.canceled_at),
    ended_at = coalesce(excluded.ended_at, s.ended_at),
    -- Past due is over once Stripe says the subscription is in good standing again.
    grace_period_end = case when excluded.status in ('active', 'trialing') then null else s.grace_period_end end,
    last_stripe_event_at = excluded.last_stripe_event_at,
    last_stripe_event_id = coalesce(excluded.last_stripe_event_id, s.last_stripe_event_id)
  returning s.id into v_id;

  if v_status is distinct from v_existing.status then
    if v_status = 'canceled' then
      perform private.end_subscription_credits(p_organization_id, v_id);
    end if;
    perform private.raise_alert(p_organization_id, 'subscription_changed',
      case when v_status in ('past_due', 'unpaid', 'canceled') then 'warning' else 'info' end::public.billing_alert_severity,
      case v_status
        when 'trialing' then 'Trial started'
        when 'active' then 'Subscription active'
        when 'past_due' then 'Subscription past due'
        when 'canceled' then 'Subscription canceled'
        when 'unpaid' then 'Subscription unpaid'
        else 'Subscription ' || v_status::text
      end,
      pg_catalog.format('The subscription is now %s.', replace(v_status::text, '_', ' ')),
      jsonb_build_object('subscription', p_stripe_subscription_id, 'status', v_status, 'previous_status', v_existing.status),
      'subscription:' || p_stripe_subscription_id || ':' || v_status::text);
  end if;

  perform private.mark_event_processed(p_event_id, p_organization_id);
  return v_id;
end;
$$;
