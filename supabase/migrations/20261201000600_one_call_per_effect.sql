-- One call per effect, for the effects that need their subscription first: a paid invoice, a
-- failed invoice payment and a trial-ending reminder each bring their subscription up to date
-- as re-read from Stripe (so the invoice finds the current plan and status) and then apply
-- their effect and mark the event processed, all in one transaction. Until now the webhook
-- applied the subscription in a call of its own before the effect: two transactions, so a
-- failure between them left a subscription changed by an event that was not done.
--
-- Each function takes its effect's arguments (those of apply_invoice_paid,
-- apply_invoice_payment_failed and apply_trial_will_end, unchanged) followed by the
-- subscription's state (those of apply_stripe_subscription, without the event id), and calls
-- the existing functions for both: nothing here restates their rules. The older functions stay
-- as they are for callers that apply the subscription some other way.

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * A paid subscription invoice with its subscription as re-read from Stripe: applies the
 * subscription's state (apply_stripe_subscription), then the invoice (apply_invoice_paid:
 * the period's credits once per invoice, the payment in the history, the end of any past-due
 * state) and marks the event processed, in one transaction. Returns what apply_invoice_paid
 * returns.
 */
create function public.apply_invoice_paid_with_subscription(
  p_event_id text,
  p_organization_id uuid,
  p_invoice_id text,
  p_stripe_subscription_id text,
  p_period_start timestamptz,
  p_period_end timestamptz,
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
  -- No event id here: the event is done only once its effect below is applied too.
  perform public.apply_stripe_subscription(null, p_organization_id, p_stripe_subscription_id,
    p_stripe_customer_id, p_stripe_price_id, p_status, p_current_period_start, p_current_period_end,
    p_trial_start, p_trial_end, p_cancel_at_period_end, p_cancel_at, p_canceled_at, p_ended_at, p_observed_at);
  return public.apply_invoice_paid(p_event_id, p_organization_id, p_invoice_id, p_stripe_subscription_id,
    p_period_start, p_period_end, p_amount_paid, p_currency, p_paid_at, coalesce(p_details, '{}'));
end;
$$;
comment on function public.apply_invoice_paid_with_subscription(text, uuid, text, text, timestamptz, timestamptz, bigint, text, timestamptz, jsonb, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) is
  'Service role: applies the subscription as re-read, then the paid invoice, and marks the event processed, in one transaction.';
revoke all on function public.apply_invoice_paid_with_subscription(text, uuid, text, text, timestamptz, timestamptz, bigint, text, timestamptz, jsonb, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.apply_invoice_paid_with_subscription(text, uuid, text, text, timestamptz, timestamptz, bigint, text, timestamptz, jsonb, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) to service_role;

/**
 * A failed subscription invoice payment with its subscription as re-read from Stripe: applies
 * the subscription's state (apply_stripe_subscription), then the failure
 * (apply_invoice_payment_failed: the grace period, the history row, the alert) and marks the
 * event processed, in one transaction. Returns the grace period's end.
 */
create function public.apply_invoice_payment_failed_with_subscription(
  p_event_id text,
  p_organization_id uuid,
  p_invoice_id text,
  p_stripe_subscription_id text,
  p_amount_due bigint,
  p_currency text,
  p_failed_at timestamptz,
  p_grace_period interval,
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
) returns timestamptz
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
  return public.apply_invoice_payment_failed(p_event_id, p_organization_id, p_invoice_id, p_stripe_subscription_id,
    p_amount_due, p_currency, p_failed_at, p_grace_period, coalesce(p_details, '{}'));
end;
$$;
comment on function public.apply_invoice_payment_failed_with_subscription(text, uuid, text, text, bigint, text, timestamptz, interval, jsonb, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) is
  'Service role: applies the subscription as re-read, then the failed invoice payment, and marks the event processed, in one transaction.';
revoke all on function public.apply_invoice_payment_failed_with_subscription(text, uuid, text, text, bigint, text, timestamptz, interval, jsonb, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.apply_invoice_payment_failed_with_subscription(text, uuid, text, text, bigint, text, timestamptz, interval, jsonb, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) to service_role;

/**
 * A trial-ending reminder with its subscription as re-read from Stripe: applies the
 * subscription's state (apply_stripe_subscription), then raises the trial-ending alert with
 * the trial end as read (apply_trial_will_end) and marks the event processed, in one
 * transaction. Returns the alert id.
 */
create function public.apply_trial_will_end_with_subscription(
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
begin
  perform private.require_service();
  perform public.apply_stripe_subscription(null, p_organization_id, p_stripe_subscription_id,
    p_stripe_customer_id, p_stripe_price_id, p_status, p_current_period_start, p_current_period_end,
    p_trial_start, p_trial_end, p_cancel_at_period_end, p_cancel_at, p_canceled_at, p_ended_at, p_observed_at);
  return public.apply_trial_will_end(p_event_id, p_organization_id, p_stripe_subscription_id, p_trial_end);
end;
$$;
comment on function public.apply_trial_will_end_with_subscription(text, uuid, text, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) is
  'Service role: applies the subscription as re-read, then raises the trial-ending alert, and marks the event processed, in one transaction.';
revoke all on function public.apply_trial_will_end_with_subscription(text, uuid, text, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.apply_trial_will_end_with_subscription(text, uuid, text, text, text, text, timestamptz, timestamptz, timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz) to service_role;
