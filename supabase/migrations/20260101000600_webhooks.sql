-- Webhooks: the inbox of Stripe events. The webhook verifies an event's signature, persists
-- it here keyed by Stripe's event id, applies it, and marks it processed in the same
-- transaction as its effects. An event that will fail again (bad data) is parked with its
-- error for re-drive instead of being retried forever. Service role only.

-- ============================================================================
-- Types and tables
-- ============================================================================

create type public.stripe_event_status as enum ('received', 'processed', 'ignored', 'parked');

create table public.stripe_events (
  id text primary key check (id ~ '^evt_[A-Za-z0-9_]+$'),
  type text not null check (char_length(type) between 1 and 100),
  stripe_created_at timestamptz not null,
  livemode boolean not null default false,
  payload jsonb not null check (jsonb_typeof(payload) = 'object'),
  status public.stripe_event_status not null default 'received',
  attempts integer not null default 1 check (attempts >= 1),
  last_error text,
  organization_id uuid references public.organizations (id) on delete set null,
  received_at timestamptz not null default now(),
  processed_at timestamptz
);
alter table public.stripe_events enable row level security;

comment on table public.stripe_events is
  'Inbox of verified Stripe webhook events, one row per event id. Service role only (no policies).';
comment on column public.stripe_events.stripe_created_at is 'Stripe event "created" (Unix seconds, converted).';
comment on column public.stripe_events.attempts is 'How many times Stripe delivered this event to us.';
comment on column public.stripe_events.last_error is 'Why a parked event could not be applied; cleared when it is re-driven.';

create index stripe_events_pending_idx on public.stripe_events (received_at) where status in ('received', 'parked');
create index stripe_events_organization_id_idx on public.stripe_events (organization_id) where organization_id is not null;

-- No policies: members never read raw Stripe payloads.
revoke all on public.stripe_events from anon, authenticated;

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * Persists a verified event (first delivery) or counts a redelivery. Returns
 * {"status": "...", "duplicate": bool, "attempts": n}: the caller applies the event only
 * when its status is "received". An event of a type the webhook does not handle
 * (p_handled false) is stored as ignored at once: one round trip, nothing to apply.
 */
create function public.record_stripe_event(
  p_event_id text,
  p_type text,
  p_created_at timestamptz,
  p_livemode boolean,
  p_payload jsonb,
  p_handled boolean default true
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row record;
begin
  perform private.require_service();
  if p_event_id is null or p_event_id !~ '^evt_[A-Za-z0-9_]+$' or char_length(p_event_id) > 255 then
    raise exception 'event id must be a Stripe event id (evt_...)' using errcode = '22023';
  end if;
  if p_type is null or char_length(p_type) not between 1 and 100 then
    raise exception 'event type is required' using errcode = '22023';
  end if;
  if p_created_at is null or p_payload is null or jsonb_typeof(p_payload) <> 'object' then
    raise exception 'event created time and JSON payload are required' using errcode = '22023';
  end if;

  insert into public.stripe_events as e (id, type, stripe_created_at, livemode, payload, status, processed_at)
  values (p_event_id, p_type, p_created_at, coalesce(p_livemode, false), p_payload,
          case when coalesce(p_handled, true) then 'received' else 'ignored' end::public.stripe_event_status,
          case when coalesce(p_handled, true) then null else now() end)
  on conflict (id) do update set attempts = e.attempts + 1
  returning e.status, e.attempts into v_row;
  return jsonb_build_object('status', v_row.status, 'duplicate', v_row.attempts > 1, 'attempts', v_row.attempts);
end;
$$;
comment on function public.record_stripe_event(text, text, timestamptz, boolean, jsonb, boolean) is
  'Service role: persists a verified Stripe event by id (redeliveries only count). Apply it only while status is received.';
revoke all on function public.record_stripe_event(text, text, timestamptz, boolean, jsonb, boolean) from public, anon, authenticated;
grant execute on function public.record_stripe_event(text, text, timestamptz, boolean, jsonb, boolean) to service_role;

/**
 * Marks an event processed, ignored (nothing to do: unhandled type, unknown customer) or
 * parked (it will fail again; p_error says why). A processed or ignored event stays so.
 * Effects that must be atomic with "processed" call this inside their own transaction.
 */
create function public.finish_stripe_event(
  p_event_id text,
  p_status text,
  p_organization_id uuid default null,
  p_error text default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  if p_status is null or p_status not in ('processed', 'ignored', 'parked') then
    raise exception 'status must be processed, ignored or parked' using errcode = '22023';
  end if;
  if p_status = 'parked' and coalesce(btrim(p_error), '') = '' then
    raise exception 'a parked event needs the error that parked it' using errcode = '22023';
  end if;
  update public.stripe_events e
     set status = p_status::public.stripe_event_status,
         organization_id = coalesce(p_organization_id, e.organization_id),
         last_error = case when p_status = 'parked' then left(p_error, 2000) else null end,
         processed_at = case when p_status = 'parked' then null else now() end
   where e.id = p_event_id
     and e.status in ('received', 'parked');
  if not found and not exists (select 1 from public.stripe_events e where e.id = p_event_id) then
    raise exception 'event % was never recorded', p_event_id using errcode = 'PT404';
  end if;
end;
$$;
comment on function public.finish_stripe_event(text, text, uuid, text) is
  'Service role: marks a recorded event processed, ignored or parked (with its error). Terminal states stay.';
revoke all on function public.finish_stripe_event(text, text, uuid, text) from public, anon, authenticated;
grant execute on function public.finish_stripe_event(text, text, uuid, text) to service_role;

/**
 * Puts a parked event back in line and returns its payload, for the webhook's re-drive
 * endpoint to apply again. PT409 unless the event is parked.
 */
create function public.redrive_stripe_event(p_event_id text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_payload jsonb;
begin
  perform private.require_service();
  update public.stripe_events e
     set status = 'received', last_error = null
   where e.id = p_event_id and e.status = 'parked'
  returning e.payload into v_payload;
  if v_payload is null then
    if not exists (select 1 from public.stripe_events e where e.id = p_event_id) then
      raise exception 'event % was never recorded', p_event_id using errcode = 'PT404';
    end if;
    raise exception 'event % is not parked', p_event_id using errcode = 'PT409';
  end if;
  return v_payload;
end;
$$;
comment on function public.redrive_stripe_event(text) is 'Service role: returns a parked event to received and gives back its payload.';
revoke all on function public.redrive_stripe_event(text) from public, anon, authenticated;
grant execute on function public.redrive_stripe_event(text) to service_role;

-- ============================================================================
-- Applying events
-- ============================================================================
-- The webhook maps each Stripe object (re-read from Stripe when it is applied, never taken
-- blindly from an old event) to these typed calls. Each applies its effects and marks the
-- event processed in one transaction; each is safe to run twice; money effects are keyed by
-- business ids (invoice, checkout session, refund), never by event ids. p_event_id may be
-- null for a sync outside a webhook.

/**
 * Marks the inbox event processed, when there is one.
 */
create function private.mark_event_processed(p_event_id text, p_organization_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_event_id is not null then
    perform public.finish_stripe_event(p_event_id, 'processed', p_organization_id);
  end if;
end;
$$;
revoke all on function private.mark_event_processed(text, uuid) from public;

/**
 * Links the organization to its Stripe customer (checkout completed). A customer already
 * linked to another organization is refused (PT409): one customer per organization.
 */
create function public.link_stripe_customer(p_event_id text, p_organization_id uuid, p_stripe_customer_id text)
returns void
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
  select o.stripe_customer_id into v_current from public.organizations o where o.id = p_organization_id for update;
  if not found then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  if v_current is not null and v_current <> p_stripe_customer_id then
    raise exception 'organization is already linked to customer %', v_current using errcode = 'PT409';
  end if;
  if exists (select 1 from public.organizations o where o.stripe_customer_id = p_stripe_customer_id and o.id <> p_organization_id) then
    raise exception 'customer % belongs to another organization', p_stripe_customer_id using errcode = 'PT409';
  end if;
  update public.organizations o set stripe_customer_id = p_stripe_customer_id
   where o.id = p_organization_id and o.stripe_customer_id is null;
  perform private.mark_event_processed(p_event_id, p_organization_id);
end;
$$;
comment on function public.link_stripe_customer(text, uuid, text) is
  'Service role: links an organization to its Stripe customer once (PT409 if either side is linked elsewhere).';
revoke all on function public.link_stripe_customer(text, uuid, text) from public, anon, authenticated;
grant execute on function public.link_stripe_customer(text, uuid, text) to service_role;

/**
 * A subscription ended: what is left of its allowance expires now (a ledger row per lot, so
 * the ledger shows where the credits went). The caller holds the organization lock.
 */
create function private.end_subscription_credits(p_organization_id uuid, p_subscription_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.credit_lots l
     set expires_at = now()
   where l.organization_id = p_organization_id
     and l.subscription_id = p_subscription_id
     and l.remaining > 0
     and l.expires_at > now();
  perform private.expire_organization_lots(p_organization_id);
end;
$$;
revoke all on function private.end_subscription_credits(uuid, uuid) from public;

/**
 * Applies a subscription's state as Stripe reported it at p_observed_at (the time it was
 * read from Stripe, or the event's creation). Older observations never overwrite newer
 * ones, a canceled subscription stays canceled, and a subscription that becomes canceled
 * loses its remaining subscription credits. The plan and interval come from the price.
 * Returns the subscription row id.
 */
create function public.apply_stripe_subscription(
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

  select p.id,
         case when p.stripe_annual_price_id = p_stripe_price_id then 'year' else 'month' end::public.billing_interval as billing_interval
    into v_plan
    from public.subscription_plans p
   where p_stripe_price_id in (p.stripe_monthly_price_id, p.stripe_annual_price_id);
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
comment on function public.apply_stripe_subscription(text, uuid, text, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) is
  'Service role: applies a Stripe subscription state observed at p_observed_at; stale observations are ignored, canceled is terminal.';
revoke all on function public.apply_stripe_subscription(text, uuid, text, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.apply_stripe_subscription(text, uuid, text, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) to service_role;

/**
 * A paid subscription invoice: allocates the period's credits (the plan's allowance for the
 * subscription's interval) once per invoice, records the payment with its links, and ends
 * any past-due state. The subscription must have been applied first.
 */
create function public.apply_invoice_paid(
  p_event_id text,
  p_organization_id uuid,
  p_invoice_id text,
  p_stripe_subscription_id text,
  p_period_start timestamptz,
  p_period_end timestamptz,
  p_amount_paid bigint,
  p_currency text,
  p_paid_at timestamptz,
  p_details jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_subscription record;
  v_allocation jsonb;
begin
  perform private.require_service();
  if p_invoice_id is null or p_invoice_id !~ '^in_[A-Za-z0-9_]+$' then
    raise exception 'invoice id must be a Stripe invoice id (in_...)' using errcode = '22023';
  end if;
  select s.id, s.organization_id, s.billing_interval, s.status, p.name as plan_name,
         case s.billing_interval when 'year' then p.annual_credits else p.monthly_credits end as credits
    into v_subscription
    from public.organization_subscriptions s
    join public.subscription_plans p on p.id = s.plan_id
   where s.stripe_subscription_id = p_stripe_subscription_id;
  if v_subscription.id is null then
    raise exception 'subscription % has not been applied', coalesce(p_stripe_subscription_id, 'null') using errcode = 'PT404';
  end if;
  if v_subscription.organization_id <> p_organization_id then
    raise exception 'subscription % belongs to another organization', p_stripe_subscription_id using errcode = 'PT409';
  end if;

  v_allocation := public.allocate_subscription_credits(p_organization_id, p_invoice_id, v_subscription.credits,
    p_period_start, p_period_end, v_subscription.id);
  if v_subscription.status = 'canceled' then
    -- The payment is applied after the subscription ended (events crossed): delivered in
    -- order, its credits would have expired at the cancellation, so they expire now.
    perform private.end_subscription_credits(p_organization_id, v_subscription.id);
  end if;
  perform public.record_billing_history(p_organization_id, p_invoice_id, 'subscription_invoice', 'paid',
    p_amount_paid, p_currency, p_paid_at,
    pg_catalog.format('%s plan (%sly)', v_subscription.plan_name, v_subscription.billing_interval),
    coalesce(p_details, '{}') || jsonb_build_object('stripe_invoice_id', p_invoice_id,
      'period_start', p_period_start, 'period_end', p_period_end));
  update public.organization_subscriptions s
     set grace_period_end = null
   where s.id = v_subscription.id and s.grace_period_end is not null;
  update public.billing_alerts a
     set dismissed_at = now()
   where a.organization_id = p_organization_id and a.kind = 'payment_failed' and a.dismissed_at is null
     and a.dedupe_key = 'payment_failed:' || p_invoice_id;

  perform private.mark_event_processed(p_event_id, p_organization_id);
  return v_allocation;
end;
$$;
comment on function public.apply_invoice_paid(text, uuid, text, text, timestamptz, timestamptz, bigint, text, timestamptz, jsonb) is
  'Service role: allocates a paid period''s subscription credits once per invoice, records the payment, clears past due.';
revoke all on function public.apply_invoice_paid(text, uuid, text, text, timestamptz, timestamptz, bigint, text, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function public.apply_invoice_paid(text, uuid, text, text, timestamptz, timestamptz, bigint, text, timestamptz, jsonb) to service_role;

/**
 * A failed subscription payment: starts the grace period (the first failure of the invoice
 * starts it; Stripe's retries do not extend it), records the failure, alerts the members.
 */
create function public.apply_invoice_payment_failed(
  p_event_id text,
  p_organization_id uuid,
  p_invoice_id text,
  p_stripe_subscription_id text,
  p_amount_due bigint,
  p_currency text,
  p_failed_at timestamptz,
  p_grace_period interval default interval '7 days',
  p_details jsonb default '{}'
) returns timestamptz
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_grace_end timestamptz;
begin
  perform private.require_service();
  if p_invoice_id is null or p_invoice_id !~ '^in_[A-Za-z0-9_]+$' then
    raise exception 'invoice id must be a Stripe invoice id (in_...)' using errcode = '22023';
  end if;
  if p_failed_at is null or p_grace_period is null or p_grace_period < interval '0' then
    raise exception 'failure time and a non-negative grace period are required' using errcode = '22023';
  end if;
  update public.organization_subscriptions s
     set grace_period_end = coalesce(s.grace_period_end, p_failed_at + p_grace_period)
   where s.stripe_subscription_id = p_stripe_subscription_id and s.organization_id = p_organization_id
  returning s.grace_period_end into v_grace_end;
  if v_grace_end is null then
    raise exception 'subscription % has not been applied for this organization', coalesce(p_stripe_subscription_id, 'null')
      using errcode = 'PT404';
  end if;

  perform public.record_billing_history(p_organization_id, p_invoice_id, 'subscription_invoice', 'failed',
    p_amount_due, p_currency, p_failed_at, 'Subscription payment failed',
    coalesce(p_details, '{}') || jsonb_build_object('stripe_invoice_id', p_invoice_id));
  perform private.raise_alert(p_organization_id, 'payment_failed', 'critical', 'Payment failed',
    pg_catalog.format('The subscription payment failed. Update the card before %s to keep using subscription credits.',
      pg_catalog.to_char(v_grace_end at time zone 'utc', 'YYYY-MM-DD')),
    jsonb_build_object('invoice', p_invoice_id, 'grace_period_end', v_grace_end),
    'payment_failed:' || p_invoice_id);

  perform private.mark_event_processed(p_event_id, p_organization_id);
  return v_grace_end;
end;
$$;
comment on function public.apply_invoice_payment_failed(text, uuid, text, text, bigint, text, timestamptz, interval, jsonb) is
  'Service role: records a failed subscription payment, starts the grace period once per subscription, alerts members.';
revoke all on function public.apply_invoice_payment_failed(text, uuid, text, text, bigint, text, timestamptz, interval, jsonb) from public, anon, authenticated;
grant execute on function public.apply_invoice_payment_failed(text, uuid, text, text, bigint, text, timestamptz, interval, jsonb) to service_role;

/**
 * A credit pack checkout: on payment, grants the pack's purchased credits once per checkout
 * session and records the payment; on failure, records it without credits.
 */
create function public.apply_credit_purchase(
  p_event_id text,
  p_organization_id uuid,
  p_checkout_session_id text,
  p_product_code text,
  p_paid boolean,
  p_amount bigint,
  p_currency text,
  p_occurred_at timestamptz,
  p_details jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_product record;
  v_grant jsonb := null;
begin
  perform private.require_service();
  if p_checkout_session_id is null or p_checkout_session_id !~ '^cs_[A-Za-z0-9_]+$' then
    raise exception 'checkout session id must be a Stripe checkout session id (cs_...)' using errcode = '22023';
  end if;
  if p_paid is null then
    raise exception 'paid must be true or false' using errcode = '22023';
  end if;
  select p.code, p.name, p.credits into v_product from public.credit_products p where p.code = p_product_code;
  if v_product.code is null then
    raise exception 'unknown credit product %', coalesce(p_product_code, 'null') using errcode = 'PT404';
  end if;

  if p_paid then
    v_grant := public.grant_credits(p_organization_id, v_product.credits, 'purchased', null, p_checkout_session_id);
  end if;
  perform public.record_billing_history(p_organization_id, p_checkout_session_id, 'credit_purchase',
    case when p_paid then 'paid' else 'failed' end, p_amount, p_currency, p_occurred_at, v_product.name,
    coalesce(p_details, '{}') || jsonb_build_object('stripe_checkout_session_id', p_checkout_session_id));

  perform private.mark_event_processed(p_event_id, p_organization_id);
  return coalesce(v_grant, jsonb_build_object('granted', 0));
end;
$$;
comment on function public.apply_credit_purchase(text, uuid, text, text, boolean, bigint, text, timestamptz, jsonb) is
  'Service role: grants a paid credit pack once per checkout session and records the payment (or the failure).';
revoke all on function public.apply_credit_purchase(text, uuid, text, text, boolean, bigint, text, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function public.apply_credit_purchase(text, uuid, text, text, boolean, bigint, text, timestamptz, jsonb) to service_role;

/**
 * A refund of a credit pack: claws back the refunded share of the pack's credits once per
 * refund (never below zero; the already-spent part is recorded as the shortfall), records
 * the refund, and marks the purchase partially or fully refunded.
 */
create function public.apply_credit_refund(
  p_event_id text,
  p_organization_id uuid,
  p_refund_id text,
  p_checkout_session_id text,
  p_refund_amount bigint,
  p_charge_amount bigint,
  p_total_refunded bigint,
  p_currency text,
  p_refunded_at timestamptz,
  p_details jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_granted integer;
  v_credits integer;
  v_clawback jsonb;
begin
  perform private.require_service();
  if p_refund_id is null or p_refund_id !~ '^re_[A-Za-z0-9_]+$' then
    raise exception 'refund id must be a Stripe refund id (re_...)' using errcode = '22023';
  end if;
  if p_refund_amount is null or p_charge_amount is null or p_total_refunded is null
     or p_refund_amount <= 0 or p_charge_amount <= 0 or p_refund_amount > p_charge_amount
     or p_total_refunded < p_refund_amount or p_total_refunded > p_charge_amount then
    raise exception 'refund amounts must satisfy 0 < refund <= total refunded <= charge' using errcode = '22023';
  end if;
  select l.granted into v_granted
    from public.credit_lots l
   where l.organization_id = p_organization_id and l.reference = p_checkout_session_id and l.source = 'purchased';
  if v_granted is null then
    raise exception 'no credit purchase % for this organization', coalesce(p_checkout_session_id, 'null') using errcode = 'PT404';
  end if;

  -- The refunded share of the pack, rounded up: a refund never leaves paid-for credit behind.
  v_credits := ceil(v_granted::numeric * p_refund_amount / p_charge_amount)::integer;
  v_clawback := public.claw_back_refund(p_organization_id, p_refund_id, v_credits, p_checkout_session_id);
  perform public.record_billing_history(p_organization_id, p_refund_id, 'refund', 'refunded', p_refund_amount,
    p_currency, p_refunded_at, 'Refund of a credit purchase',
    coalesce(p_details, '{}') || jsonb_build_object('stripe_refund_id', p_refund_id,
      'stripe_checkout_session_id', p_checkout_session_id));
  update public.billing_history h
     set status = greatest(h.status,
       case when p_total_refunded >= p_charge_amount then 'refunded' else 'partially_refunded' end::public.billing_history_status)
   where h.stripe_reference = p_checkout_session_id and h.organization_id = p_organization_id;

  perform private.mark_event_processed(p_event_id, p_organization_id);
  return v_clawback;
end;
$$;
comment on function public.apply_credit_refund(text, uuid, text, text, bigint, bigint, bigint, text, timestamptz, jsonb) is
  'Service role: claws back the refunded share of a credit pack once per refund and records it.';
revoke all on function public.apply_credit_refund(text, uuid, text, text, bigint, bigint, bigint, text, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function public.apply_credit_refund(text, uuid, text, text, bigint, bigint, bigint, text, timestamptz, jsonb) to service_role;
