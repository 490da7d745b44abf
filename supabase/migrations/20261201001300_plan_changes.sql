-- Plan changes made in the app. An upgrade is charged at once by Stripe as prorations of the
-- old and new price for the rest of the period (a `subscription_update` invoice with only
-- proration lines); its credits are the same proration applied to the plans' allowances, so a
-- member gets exactly the share of the higher allowance they paid for. The invoice has no
-- period line, so it must not allocate a fresh full allowance (apply_invoice_paid would, and
-- would expire the period's lot): apply_proration_invoice_paid handles it instead.
-- Downgrades and interval changes wait for the renewal (a Stripe subscription schedule), whose
-- invoice is allocated by apply_invoice_paid as any renewal.

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * The allowance a plan-change invoice's proration lines pay for: over the lines, the signed
 * allowance of each line's price (its plan's allowance for the price's interval; minus for a
 * credit line, plus for a charge) times the share of the period the line covers, summed and
 * rounded down, never below zero. Prices that are not ours count for nothing.
 * p_lines: [{"price": "price_…", "amount": int, "start": timestamptz, "end": timestamptz}].
 * Service role only (the preview and the webhook compute it the same way).
 */
create function public.proration_allowance_credits(
  p_lines jsonb,
  p_period_start timestamptz,
  p_period_end timestamptz
) returns integer
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_line jsonb;
  v_start timestamptz;
  v_end timestamptz;
  v_amount bigint;
  v_allowance integer;
  v_period numeric;
  v_total numeric := 0;
begin
  perform private.require_service();
  if p_lines is null or jsonb_typeof(p_lines) <> 'array' or jsonb_array_length(p_lines) > 100 then
    raise exception 'lines must be a JSON array of at most 100 lines' using errcode = '22023';
  end if;
  if p_period_start is null or p_period_end is null or p_period_end <= p_period_start then
    raise exception 'the period must have a start before its end' using errcode = '22023';
  end if;
  v_period := extract(epoch from p_period_end - p_period_start);
  for v_line in select value from jsonb_array_elements(p_lines) loop
    if jsonb_typeof(v_line) <> 'object' or jsonb_typeof(v_line -> 'price') <> 'string'
       or jsonb_typeof(v_line -> 'amount') <> 'number' or jsonb_typeof(v_line -> 'start') <> 'string'
       or jsonb_typeof(v_line -> 'end') <> 'string' then
      raise exception 'each line needs price, amount, start and end' using errcode = '22023';
    end if;
    begin
      v_amount := (v_line ->> 'amount')::bigint;
      v_start := (v_line ->> 'start')::timestamptz;
      v_end := (v_line ->> 'end')::timestamptz;
    exception when others then
      raise exception 'a line''s amount or period is malformed' using errcode = '22023';
    end;
    select case pp.billing_interval when 'year' then p.annual_credits else p.monthly_credits end
      into v_allowance
      from private.plan_of_stripe_price(v_line ->> 'price') pp
      join public.subscription_plans p on p.id = pp.plan_id;
    continue when v_allowance is null or v_amount = 0;
    -- Only the part of the line inside the period counts, so no line can pay for more than it.
    v_total := v_total + sign(v_amount) * v_allowance *
      greatest(0, extract(epoch from least(v_end, p_period_end) - greatest(v_start, p_period_start))) / v_period;
  end loop;
  return greatest(0, floor(v_total))::integer;
end;
$$;
comment on function public.proration_allowance_credits(jsonb, timestamptz, timestamptz) is
  'Service role: the credits a plan change''s proration lines pay for (the allowances prorated as Stripe prorates the prices), rounded down, at least 0.';
revoke all on function public.proration_allowance_credits(jsonb, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.proration_allowance_credits(jsonb, timestamptz, timestamptz) to service_role;

/**
 * A paid plan-change invoice (only proration lines, no period line: an upgrade charged at
 * once). Adds the prorated difference of the allowances for the rest of the period as one
 * subscription lot keyed on the invoice, in the current period and expiring at its end,
 * leaving the period's own lot as it is; grants nothing when the difference is not positive.
 * Records the payment and marks the event processed. A replay grants once. The subscription
 * must have been applied first. Returns the grant (or {"granted": 0}).
 */
create function public.apply_proration_invoice_paid(
  p_event_id text,
  p_organization_id uuid,
  p_invoice_id text,
  p_stripe_subscription_id text,
  p_lines jsonb,
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
  v_lines_end timestamptz;
  v_period_start timestamptz;
  v_period_end timestamptz;
  v_credits integer;
  v_lot_id bigint;
  v_result jsonb;
begin
  perform private.require_service();
  if p_invoice_id is null or p_invoice_id !~ '^in_[A-Za-z0-9_]+$' then
    raise exception 'invoice id must be a Stripe invoice id (in_...)' using errcode = '22023';
  end if;
  if p_lines is null or jsonb_typeof(p_lines) <> 'array' then
    raise exception 'lines must be a JSON array' using errcode = '22023';
  end if;
  select s.id, s.organization_id, s.billing_interval, s.status, s.current_period_start, s.current_period_end,
         p.name as plan_name
    into v_subscription
    from public.organization_subscriptions s
    left join public.subscription_plans p on p.id = s.plan_id
   where s.stripe_subscription_id = p_stripe_subscription_id;
  if v_subscription.id is null then
    raise exception 'subscription % has not been applied', coalesce(p_stripe_subscription_id, 'null') using errcode = 'PT404';
  end if;
  if v_subscription.organization_id <> p_organization_id then
    raise exception 'subscription % belongs to another organization', p_stripe_subscription_id using errcode = 'PT409';
  end if;

  perform private.lock_organization(p_organization_id);

  select l.id into v_lot_id
    from public.credit_lots l
   where l.organization_id = p_organization_id and l.reference = p_invoice_id;
  if v_lot_id is not null then
    v_result := private.grant_result(v_lot_id, true);
  else
    -- The period the prorations cover ends where the lines end: the subscription's current
    -- period, or (the payment applied after a renewal) the one before it.
    select max((value ->> 'end')::timestamptz) into v_lines_end from jsonb_array_elements(p_lines);
    if v_lines_end is null or v_lines_end = v_subscription.current_period_end then
      v_period_start := v_subscription.current_period_start;
      v_period_end := v_subscription.current_period_end;
    else
      v_period_end := v_lines_end;
      v_period_start := v_lines_end - ('1 ' || v_subscription.billing_interval::text)::interval;
    end if;
    v_credits := case when v_period_start is null or v_period_end is null then 0
                      else public.proration_allowance_credits(p_lines, v_period_start, v_period_end) end;
    if v_credits > 0 then
      -- Not allocate_subscription_credits: that starts a new period and would expire this
      -- period's lot. This lot belongs to the same period and ends with it.
      v_lot_id := private.grant_lot(p_organization_id, v_credits, 'subscription', v_period_end, p_invoice_id,
        'prorated allowance for a plan upgrade', v_subscription.id, v_period_start, v_period_end);
      -- A late delivery for a period already over grants and expires at once, visibly.
      perform private.expire_organization_lots(p_organization_id);
      v_result := private.grant_result(v_lot_id, false);
    else
      v_result := jsonb_build_object('lot_id', null, 'transaction_id', null, 'granted', 0, 'source', 'subscription',
        'balance', private.credit_balance(p_organization_id), 'idempotent_replay', false);
    end if;
    if v_subscription.status = 'canceled' then
      -- Applied after the subscription ended: in order, these credits would have ended with it.
      perform private.end_subscription_credits(p_organization_id, v_subscription.id);
    end if;
  end if;

  perform public.record_billing_history(p_organization_id, p_invoice_id, 'subscription_invoice', 'paid',
    p_amount_paid, p_currency, p_paid_at,
    pg_catalog.format('Change to %s plan (%sly), prorated', coalesce(v_subscription.plan_name, 'another'),
      v_subscription.billing_interval),
    coalesce(p_details, '{}') || jsonb_build_object('stripe_invoice_id', p_invoice_id));
  perform private.resolve_alerts(p_organization_id, 'payment_failed', array['payment_failed:' || p_invoice_id],
    'invoice_paid');
  perform private.mark_event_processed(p_event_id, p_organization_id);
  return v_result;
end;
$$;
comment on function public.apply_proration_invoice_paid(text, uuid, text, text, jsonb, bigint, text, timestamptz, jsonb) is
  'Service role: a paid plan-change (proration-only) invoice adds the prorated allowance difference for the rest of the period, once per invoice, and records the payment.';
revoke all on function public.apply_proration_invoice_paid(text, uuid, text, text, jsonb, bigint, text, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function public.apply_proration_invoice_paid(text, uuid, text, text, jsonb, bigint, text, timestamptz, jsonb) to service_role;

/**
 * apply_proration_invoice_paid with its subscription as re-read from Stripe, applied first, in
 * one transaction (as apply_invoice_paid_with_subscription does for a period's invoice).
 */
create function public.apply_proration_invoice_paid_with_subscription(
  p_event_id text,
  p_organization_id uuid,
  p_invoice_id text,
  p_stripe_subscription_id text,
  p_lines jsonb,
  p_amount_paid bigint,
  p_currency text,
  p_paid_at timestamptz,
  p_details jsonb,
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
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
begin
  perform private.require_service();
  perform public.apply_stripe_subscription(null, p_organization_id, p_stripe_subscription_id,
    p_stripe_customer_id, p_stripe_price_id, p_status, p_current_period_start, p_current_period_end,
    p_trial_start, p_trial_end, p_cancel_at_period_end, p_cancel_at, p_canceled_at, p_ended_at, p_observed_at);
  return public.apply_proration_invoice_paid(p_event_id, p_organization_id, p_invoice_id, p_stripe_subscription_id,
    p_lines, p_amount_paid, p_currency, p_paid_at, coalesce(p_details, '{}'));
end;
$$;
comment on function public.apply_proration_invoice_paid_with_subscription(text, uuid, text, text, jsonb, bigint, text, timestamptz, jsonb, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) is
  'Service role: applies the subscription as re-read, then the paid plan-change invoice, and marks the event processed, in one transaction.';
revoke all on function public.apply_proration_invoice_paid_with_subscription(text, uuid, text, text, jsonb, bigint, text, timestamptz, jsonb, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.apply_proration_invoice_paid_with_subscription(text, uuid, text, text, jsonb, bigint, text, timestamptz, jsonb, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) to service_role;
