-- Webhook apply: the webhook acknowledges a verified, stored event at once and applies it in
-- the background; whatever the background task does not finish (the process killed, a deploy,
-- a lock that did not come) stays `received` and the inbox sweep applies it later. And one way
-- to apply a Stripe effect: each effect is one `apply_*` call that also marks its event
-- processed, in one transaction, so an effect can never be written without its event being
-- recorded as done (or the other way round).

-- ============================================================================
-- Tables
-- ============================================================================

alter table public.stripe_events add column last_attempted_at timestamptz;
comment on column public.stripe_events.last_attempted_at is
  'When a delivery or a sweep last took the event up to apply it (null: only when it was received). The sweep waits this long before trying again.';

-- ============================================================================
-- Functions: the inbox
-- ============================================================================

/**
 * record_stripe_event as in the webhooks migration, with one change: a redelivery of an event
 * still `received` stamps last_attempted_at, since the webhook is about to apply it, so the
 * sweep leaves it to that delivery for a while.
 */
create or replace function public.record_stripe_event(
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
  on conflict (id) do update
    set attempts = e.attempts + 1,
        last_attempted_at = case when e.status = 'received' then now() else e.last_attempted_at end
  returning e.status, e.attempts into v_row;
  return jsonb_build_object('status', v_row.status, 'duplicate', v_row.attempts > 1, 'attempts', v_row.attempts);
end;
$$;
comment on function public.record_stripe_event(text, text, timestamptz, boolean, jsonb, boolean) is
  'Service role: persists a verified Stripe event by id (redeliveries only count). Apply it only while status is received.';

/**
 * The inbox sweep's claim: up to p_limit events still `received` that nobody took up in the
 * last p_older_than_seconds (since they were received, redelivered or last claimed), oldest
 * first. Each is stamped as taken before this returns, so a sweep running at the same time
 * (`skip locked`) or within the next p_older_than_seconds does not take it again; the
 * caller applies each, and one that fails again transiently stays `received` for a later
 * sweep. Applying twice is harmless (every effect is keyed by business ids and a finished
 * event stays finished), so this bounds work, it does not guard money.
 */
create function public.claim_stripe_events_to_sweep(
  p_older_than_seconds integer default 60,
  p_limit integer default 100
) returns table (event_id text, payload jsonb)
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  if p_older_than_seconds is null or p_older_than_seconds < 0 then
    raise exception 'older_than_seconds must be zero or more' using errcode = '22023';
  end if;
  if p_limit is null or p_limit not between 1 and 1000 then
    raise exception 'limit must be between 1 and 1000' using errcode = '22023';
  end if;
  return query
  with due as (
    select e.id
      from public.stripe_events e
     where e.status = 'received'
       and coalesce(e.last_attempted_at, e.received_at) <= now() - make_interval(secs => p_older_than_seconds)
     order by e.received_at
     limit p_limit
       for update skip locked
  )
  update public.stripe_events e
     set last_attempted_at = now()
    from due
   where e.id = due.id
  returning e.id, e.payload;
end;
$$;
comment on function public.claim_stripe_events_to_sweep(integer, integer) is
  'Service role: takes up to p_limit received events left alone for p_older_than_seconds, for the inbox sweep to apply.';
revoke all on function public.claim_stripe_events_to_sweep(integer, integer) from public, anon, authenticated;
grant execute on function public.claim_stripe_events_to_sweep(integer, integer) to service_role;

/**
 * Notes why the last attempt to apply a `received` event failed with an error that may pass
 * (the database busy, a lock that did not come, Stripe unreachable): the event stays
 * `received` for the sweep or a redelivery, and an operator can see why it waits.
 * Finishing the event clears it. Does nothing to an event that is no longer `received`.
 */
create function public.note_stripe_event_failure(p_event_id text, p_error text) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  if coalesce(btrim(p_error), '') = '' then
    raise exception 'a failure needs its error' using errcode = '22023';
  end if;
  update public.stripe_events e
     set last_error = left(p_error, 2000)
   where e.id = p_event_id and e.status = 'received';
  if not found and not exists (select 1 from public.stripe_events e where e.id = p_event_id) then
    raise exception 'event % was never recorded', p_event_id using errcode = 'PT404';
  end if;
end;
$$;
comment on function public.note_stripe_event_failure(text, text) is
  'Service role: records why the last attempt at a received event failed transiently; it stays received.';
revoke all on function public.note_stripe_event_failure(text, text) from public, anon, authenticated;
grant execute on function public.note_stripe_event_failure(text, text) to service_role;

comment on column public.stripe_events.last_error is
  'Why a parked event could not be applied, or why the last attempt at a received one failed for now; cleared when it is finished or re-driven.';

-- ============================================================================
-- Functions: one call per effect
-- ============================================================================

/**
 * A subscription Checkout Session completed: links the organization to the session's
 * customer and, when the session made a subscription, applies its state as re-read from
 * Stripe (the apply_stripe_subscription arguments), then marks the event processed: one
 * transaction. Without a subscription (Stripe has not made it yet) only the link is applied;
 * the subscription's own events bring it.
 */
create function public.apply_checkout_subscription(
  p_event_id text,
  p_organization_id uuid,
  p_checkout_customer_id text,
  p_stripe_subscription_id text default null,
  p_stripe_customer_id text default null,
  p_stripe_price_id text default null,
  p_status text default null,
  p_current_period_start timestamptz default null,
  p_current_period_end timestamptz default null,
  p_trial_start timestamptz default null,
  p_trial_end timestamptz default null,
  p_cancel_at_period_end boolean default null,
  p_cancel_at timestamptz default null,
  p_canceled_at timestamptz default null,
  p_ended_at timestamptz default null,
  p_observed_at timestamptz default null
) returns void
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
begin
  perform private.require_service();
  if p_checkout_customer_id is not null then
    perform public.link_stripe_customer(null, p_organization_id, p_checkout_customer_id);
  elsif not exists (select 1 from public.organizations o where o.id = p_organization_id) then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  if p_stripe_subscription_id is not null then
    perform public.apply_stripe_subscription(p_event_id, p_organization_id, p_stripe_subscription_id,
      p_stripe_customer_id, p_stripe_price_id, p_status, p_current_period_start, p_current_period_end,
      p_trial_start, p_trial_end, p_cancel_at_period_end, p_cancel_at, p_canceled_at, p_ended_at, p_observed_at);
  end if;
  perform private.mark_event_processed(p_event_id, p_organization_id);
end;
$$;
comment on function public.apply_checkout_subscription(text, uuid, text, text, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) is
  'Service role: a subscription checkout completed: links the customer, applies the subscription (if any) and marks the event processed, in one transaction.';
revoke all on function public.apply_checkout_subscription(text, uuid, text, text, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.apply_checkout_subscription(text, uuid, text, text, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) to service_role;

/**
 * A credit pack's charge was refunded: claws back each succeeded refund of the charge (once
 * per refund id, as apply_credit_refund does) and marks the event processed, in one
 * transaction. p_refunds is the charge's refunds as Stripe lists them now:
 * [{"id": "re_...", "amount": cents, "currency": "usd", "refunded_at": timestamptz}, ...].
 * Returns the claw-back of each refund, in order.
 */
create function public.apply_charge_refunded(
  p_event_id text,
  p_organization_id uuid,
  p_checkout_session_id text,
  p_charge_amount bigint,
  p_total_refunded bigint,
  p_refunds jsonb,
  p_details jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_refund jsonb;
  v_results jsonb := '[]';
begin
  perform private.require_service();
  if p_refunds is null or jsonb_typeof(p_refunds) <> 'array' then
    raise exception 'refunds must be a JSON array' using errcode = '22023';
  end if;
  if not exists (select 1 from public.organizations o where o.id = p_organization_id) then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  for v_refund in select value from jsonb_array_elements(p_refunds) loop
    if jsonb_typeof(v_refund) <> 'object' or jsonb_typeof(v_refund -> 'amount') <> 'number'
       or jsonb_typeof(v_refund -> 'id') <> 'string' or jsonb_typeof(v_refund -> 'currency') <> 'string'
       or jsonb_typeof(v_refund -> 'refunded_at') <> 'string' then
      raise exception 'each refund needs an id, an amount, a currency and refunded_at' using errcode = '22023';
    end if;
    v_results := v_results || jsonb_build_array(public.apply_credit_refund(null, p_organization_id,
      v_refund ->> 'id', p_checkout_session_id, (v_refund ->> 'amount')::bigint, p_charge_amount, p_total_refunded,
      v_refund ->> 'currency', (v_refund ->> 'refunded_at')::timestamptz, p_details));
  end loop;
  perform private.mark_event_processed(p_event_id, p_organization_id);
  return v_results;
end;
$$;
comment on function public.apply_charge_refunded(text, uuid, text, bigint, bigint, jsonb, jsonb) is
  'Service role: claws back every refund of a credit pack''s charge (once per refund) and marks the event processed, in one transaction.';
revoke all on function public.apply_charge_refunded(text, uuid, text, bigint, bigint, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.apply_charge_refunded(text, uuid, text, bigint, bigint, jsonb, jsonb) to service_role;

/**
 * Stripe says a trial ends soon: raises the organization's trial-ending alert (once per
 * subscription while it is open) with the trial end as Stripe has it now, and marks the
 * event processed, in one transaction. Returns the alert id.
 */
create function public.apply_trial_will_end(
  p_event_id text,
  p_organization_id uuid,
  p_stripe_subscription_id text,
  p_trial_end timestamptz
) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_trial_end text;
  v_id uuid;
begin
  perform private.require_service();
  if p_stripe_subscription_id is null or p_stripe_subscription_id !~ '^sub_[A-Za-z0-9_]+$' then
    raise exception 'subscription id must be a Stripe subscription id (sub_...)' using errcode = '22023';
  end if;
  if p_trial_end is null then
    raise exception 'trial_end is required' using errcode = '22023';
  end if;
  if not exists (select 1 from public.organizations o where o.id = p_organization_id) then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  -- The trial end in UTC, written as JavaScript's toISOString writes it (what members' clients parse).
  v_trial_end := pg_catalog.to_char(p_trial_end at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
  v_id := private.raise_alert(p_organization_id, 'trial_ending', 'info', 'Trial ending soon',
    pg_catalog.format('The trial ends on %s.', left(v_trial_end, 10)),
    jsonb_build_object('subscription', p_stripe_subscription_id, 'trial_end', v_trial_end),
    'trial_ending:' || p_stripe_subscription_id);
  perform private.mark_event_processed(p_event_id, p_organization_id);
  return v_id;
end;
$$;
comment on function public.apply_trial_will_end(text, uuid, text, timestamptz) is
  'Service role: raises the trial-ending alert (deduplicated per subscription) and marks the event processed, in one transaction.';
revoke all on function public.apply_trial_will_end(text, uuid, text, timestamptz) from public, anon, authenticated;
grant execute on function public.apply_trial_will_end(text, uuid, text, timestamptz) to service_role;
