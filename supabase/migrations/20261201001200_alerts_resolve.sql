-- Alerts that resolve by themselves, and the spend-limit alert on an HTTP refusal.
--
-- An alert that no longer applies is resolved (resolved_at, resolved_reason), which is not a
-- dismissal: dismissed_at stays what a member did, so the dashboard can tell the two apart,
-- and a resolved alert no longer blocks a new one with the same dedupe key (a new crossing
-- below the low-balance threshold raises a new alert).
--
-- What resolves what, each where the movement already happens:
--   low_balance          a movement that raises the balance (grant, release, refund back) and
--                        leaves it at or above the threshold: an AFTER INSERT trigger on
--                        credit_transactions whose WHEN clause only lets positive amounts
--                        through, so consumption (which never raises the balance) runs no
--                        trigger function; or a threshold lowered to or below the balance.
--   payment_failed       its invoice paid (apply_invoice_paid), or the subscription active again.
--   past due / unpaid    the subscription active again (the subscription_changed alert of that
--                        status, by its dedupe key).
--   auto_top_up_failed   a top-up succeeded; "auto top-up turned off" when it is turned on again.
--
-- The low-balance alert's words are timeless ("The balance is below your 500-credit
-- threshold"): no balance figure that goes stale as the balance moves (the figures at the
-- crossing are in its data), and the alert resolves when the words stop being true.

-- ============================================================================
-- Columns and indexes
-- ============================================================================

alter table public.billing_alerts
  add column resolved_at timestamptz,
  add column resolved_reason text check (resolved_reason is null or char_length(resolved_reason) between 1 and 100),
  add constraint billing_alerts_resolved_together check ((resolved_at is null) = (resolved_reason is null));
comment on column public.billing_alerts.resolved_at is
  'When the condition it reported stopped applying (balance back above the threshold, invoice paid, ...); null while it applies. Not a dismissal.';
comment on column public.billing_alerts.resolved_reason is
  'What resolved it: balance_restored, threshold_lowered, invoice_paid, subscription_active, auto_top_up_succeeded, auto_top_up_enabled.';

-- Open now means neither dismissed nor resolved: the dedupe key and the Overview's list.
drop index public.billing_alerts_open_dedupe_key;
create unique index billing_alerts_open_dedupe_key on public.billing_alerts (organization_id, dedupe_key)
  where dedupe_key is not null and dismissed_at is null and resolved_at is null;
drop index public.billing_alerts_active_idx;
create index billing_alerts_active_idx on public.billing_alerts (organization_id, created_at desc)
  where dismissed_at is null and resolved_at is null;
-- The resolving triggers look for an organization's open alerts of one kind.
create index billing_alerts_open_kind_idx on public.billing_alerts (organization_id, kind)
  where dismissed_at is null and resolved_at is null;

-- ============================================================================
-- Raising and resolving
-- ============================================================================

/**
 * Raises an alert unless an open (neither dismissed nor resolved) one with the same dedupe
 * key exists. Returns the alert id (the existing one's when deduplicated).
 */
create or replace function private.raise_alert(
  p_organization_id uuid,
  p_kind public.billing_alert_kind,
  p_severity public.billing_alert_severity,
  p_title text,
  p_message text,
  p_data jsonb default '{}',
  p_dedupe_key text default null
) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  insert into public.billing_alerts (organization_id, kind, severity, title, message, data, dedupe_key)
  values (p_organization_id, p_kind, p_severity, p_title, coalesce(p_message, ''), coalesce(p_data, '{}'), p_dedupe_key)
  on conflict (organization_id, dedupe_key)
    where dedupe_key is not null and dismissed_at is null and resolved_at is null do nothing
  returning id into v_id;
  if v_id is null then
    select a.id into v_id from public.billing_alerts a
     where a.organization_id = p_organization_id and a.dedupe_key = p_dedupe_key
       and a.dismissed_at is null and a.resolved_at is null;
  end if;
  return v_id;
end;
$$;
revoke all on function private.raise_alert(uuid, public.billing_alert_kind, public.billing_alert_severity, text, text, jsonb, text) from public;

/**
 * Resolves an organization's open alerts of a kind (those with one of p_dedupe_keys when
 * given, or whose dedupe key starts with p_dedupe_prefix when given). Returns how many.
 */
create function private.resolve_alerts(
  p_organization_id uuid,
  p_kind public.billing_alert_kind,
  p_dedupe_keys text[],
  p_reason text,
  p_dedupe_prefix text default null,
  p_data jsonb default '{}'
) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  update public.billing_alerts a
     set resolved_at = now(), resolved_reason = p_reason, data = a.data || coalesce(p_data, '{}')
   where a.organization_id = p_organization_id and a.kind = p_kind
     and a.dismissed_at is null and a.resolved_at is null
     and (p_dedupe_keys is null or a.dedupe_key = any (p_dedupe_keys))
     and (p_dedupe_prefix is null or starts_with(a.dedupe_key, p_dedupe_prefix));
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;
revoke all on function private.resolve_alerts(uuid, public.billing_alert_kind, text[], text, text, jsonb) from public;

-- ============================================================================
-- Low balance
-- ============================================================================

/**
 * One low_balance alert per crossing below the organization's threshold, whatever moved the
 * balance (consumption, a reservation, expiry or a refund), and at most one open at a time.
 * Its words hold as long as it is open (it resolves when the balance is back); the figures
 * at the crossing are in its data.
 */
create or replace function private.note_low_balance(p_organization_id uuid, p_before bigint, p_after bigint, p_threshold integer)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_after < p_threshold and p_before >= p_threshold then
    perform private.raise_alert(p_organization_id, 'low_balance', 'warning', 'Credit balance is low',
      pg_catalog.format('The balance is below your %s-credit threshold. Buy credits or turn on auto top-up to keep usage going; this alert goes away by itself once the balance is back at or above the threshold.',
        p_threshold),
      jsonb_build_object('balance', p_after, 'threshold', p_threshold, 'balance_before', p_before), 'low_balance');
  end if;
end;
$$;
revoke all on function private.note_low_balance(uuid, bigint, bigint, integer) from public;

/**
 * Resolves the open low_balance alert once the balance is back at or above the threshold.
 * The threshold is the one the alert was raised for when the organization's is now higher
 * (a raised threshold does not resolve anything; only the balance or a lowered threshold do).
 */
create function private.resolve_low_balance_if_restored(p_organization_id uuid, p_reason text) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_threshold integer;
  v_balance bigint;
begin
  if not exists (select 1 from public.billing_alerts a
                  where a.organization_id = p_organization_id and a.kind = 'low_balance'
                    and a.dismissed_at is null and a.resolved_at is null) then
    return;
  end if;
  select o.low_balance_threshold into v_threshold from public.organizations o where o.id = p_organization_id;
  -- The same measure note_low_balance raises on: the credits in the organization's lots.
  select coalesce(sum(l.remaining), 0) into v_balance
    from public.credit_lots l
   where l.organization_id = p_organization_id and l.remaining > 0;
  if v_balance >= v_threshold then
    perform private.resolve_alerts(p_organization_id, 'low_balance', null, p_reason, null,
      jsonb_build_object('resolved_balance', v_balance, 'resolved_threshold', v_threshold));
  end if;
end;
$$;
revoke all on function private.resolve_low_balance_if_restored(uuid, text) from public;

/** Trigger (after insert of a positive credit_transactions row): the balance went up. */
create function private.resolve_low_balance_on_credit() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.resolve_low_balance_if_restored(new.organization_id, 'balance_restored');
  return null;
end;
$$;
revoke all on function private.resolve_low_balance_on_credit() from public;

-- Row-level and AFTER: it runs at the end of the statement that moved the lots (also the
-- single-statement movements of settle and release), and the WHEN clause keeps consumption,
-- reservations and expiry (negative amounts) from running any function at all.
create trigger credit_transactions_resolve_low_balance
  after insert on public.credit_transactions
  for each row when (new.amount > 0)
  execute function private.resolve_low_balance_on_credit();

/** Trigger (after the threshold is lowered): the balance may be at or above the new one. */
create function private.resolve_low_balance_on_threshold() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.resolve_low_balance_if_restored(new.id, 'threshold_lowered');
  return null;
end;
$$;
revoke all on function private.resolve_low_balance_on_threshold() from public;

create trigger organizations_resolve_low_balance
  after update of low_balance_threshold on public.organizations
  for each row when (new.low_balance_threshold < old.low_balance_threshold)
  execute function private.resolve_low_balance_on_threshold();

-- ============================================================================
-- Failed payments and past due
-- ============================================================================

/**
 * A paid subscription invoice: allocates the period's credits once per invoice, records the
 * payment with its links, and ends any past-due state. The subscription must have been
 * applied first. The credits come from our catalog: an invoice whose period starts before
 * the subscription's trial ends pays for the trial and grants the plan's trial credits
 * (once per subscription, only for the first trial of the organization and its owners),
 * expiring when the trial ends; any other invoice grants the allowance of the
 * subscription's interval (monthly or annual).
 */
create or replace function public.apply_invoice_paid(
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
  v_is_trial boolean;
  v_credits integer;
  v_allocation jsonb;
begin
  perform private.require_service();
  if p_invoice_id is null or p_invoice_id !~ '^in_[A-Za-z0-9_]+$' then
    raise exception 'invoice id must be a Stripe invoice id (in_...)' using errcode = '22023';
  end if;
  select s.id, s.organization_id, s.billing_interval, s.status, s.trial_end, p.name as plan_name, p.trial_credits,
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

  -- Stripe bills the first paid period from the trial's end, so a period that starts
  -- before it is the trial's, whatever amount the invoice shows.
  v_is_trial := coalesce(v_subscription.trial_end is not null and p_period_start < v_subscription.trial_end, false);
  if v_is_trial then
    -- Recorded when the subscription was applied; made sure of here, under the lock, so
    -- the decision below always has the record to go by.
    perform private.lock_organization(p_organization_id);
    perform private.record_subscription_trial(v_subscription.id);
    v_credits := case
      when not coalesce((select t.grants_allowance from public.subscription_trials t
                          where t.stripe_subscription_id = p_stripe_subscription_id), false) then 0
      -- One trial allowance per subscription: a second trial invoice (a plan change during
      -- the trial) adds nothing; the first lot keeps running to the trial's end.
      when exists (select 1 from public.credit_lots l
                    where l.organization_id = p_organization_id and l.subscription_id = v_subscription.id
                      and l.period_start < v_subscription.trial_end and l.reference <> p_invoice_id) then 0
      else least(v_subscription.trial_credits, v_subscription.credits)
    end;
  else
    v_credits := v_subscription.credits;
  end if;

  v_allocation := public.allocate_subscription_credits(p_organization_id, p_invoice_id, v_credits,
    p_period_start, p_period_end, v_subscription.id);
  if v_is_trial then
    perform private.end_trial_credits_at_trial_end(v_subscription.id);
    v_allocation := v_allocation || jsonb_build_object('trial', true);
  end if;
  if v_subscription.status = 'canceled' then
    -- The payment is applied after the subscription ended (events crossed): delivered in
    -- order, its credits would have expired at the cancellation, so they expire now.
    perform private.end_subscription_credits(p_organization_id, v_subscription.id);
  end if;
  perform public.record_billing_history(p_organization_id, p_invoice_id, 'subscription_invoice', 'paid',
    p_amount_paid, p_currency, p_paid_at,
    case when v_is_trial
      then pg_catalog.format('%s plan (%sly), free trial', v_subscription.plan_name, v_subscription.billing_interval)
      else pg_catalog.format('%s plan (%sly)', v_subscription.plan_name, v_subscription.billing_interval)
    end,
    coalesce(p_details, '{}') || jsonb_build_object('stripe_invoice_id', p_invoice_id,
      'period_start', p_period_start, 'period_end', p_period_end));
  update public.organization_subscriptions s
     set grace_period_end = null
   where s.id = v_subscription.id and s.grace_period_end is not null;
  -- The failed payment of this invoice no longer applies: resolved, not dismissed (nobody did).
  perform private.resolve_alerts(p_organization_id, 'payment_failed', array['payment_failed:' || p_invoice_id],
    'invoice_paid');

  perform private.mark_event_processed(p_event_id, p_organization_id);
  return v_allocation;
end;
$$;
comment on function public.apply_invoice_paid(text, uuid, text, text, timestamptz, timestamptz, bigint, text, timestamptz, jsonb) is
  'Service role: allocates a paid period''s credits once per invoice (a trial invoice: the plan''s trial credits, until the trial ends), records the payment, clears past due.';

/**
 * Trigger (after a subscription becomes active again): its past-due and unpaid alerts and
 * the organization's failed-payment alerts no longer apply.
 */
create function private.resolve_payment_alerts_on_active() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.resolve_alerts(new.organization_id, 'payment_failed', null, 'subscription_active');
  perform private.resolve_alerts(new.organization_id, 'subscription_changed',
    array['subscription:' || new.stripe_subscription_id || ':past_due',
          'subscription:' || new.stripe_subscription_id || ':unpaid'],
    'subscription_active');
  return null;
end;
$$;
revoke all on function private.resolve_payment_alerts_on_active() from public;

create trigger organization_subscriptions_resolve_payment_alerts
  after update of status on public.organization_subscriptions
  for each row when (new.status = 'active' and old.status is distinct from new.status)
  execute function private.resolve_payment_alerts_on_active();

-- ============================================================================
-- Auto top-up
-- ============================================================================

/** Trigger (after a top-up succeeded): the failed top-ups' alerts no longer apply. */
create function private.resolve_top_up_alerts_on_success() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.resolve_alerts(new.organization_id, 'auto_top_up_failed', null, 'auto_top_up_succeeded',
    'auto_top_up_failed:');
  return null;
end;
$$;
revoke all on function private.resolve_top_up_alerts_on_success() from public;

create trigger auto_top_ups_resolve_alerts
  after update of status on public.auto_top_ups
  for each row when (new.status = 'succeeded' and old.status is distinct from new.status)
  execute function private.resolve_top_up_alerts_on_success();

/** Trigger (after auto top-up is turned on again): "auto top-up turned off" no longer applies. */
create function private.resolve_top_up_alerts_on_enabled() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.resolve_alerts(new.organization_id, 'auto_top_up_failed', null, 'auto_top_up_enabled',
    'auto_top_up_disabled:');
  return null;
end;
$$;
revoke all on function private.resolve_top_up_alerts_on_enabled() from public;

create trigger auto_top_up_settings_resolve_alerts
  after update of enabled on public.auto_top_up_settings
  for each row when (new.enabled and not old.enabled)
  execute function private.resolve_top_up_alerts_on_enabled();

-- ============================================================================
-- Spend limit: the alert when a call is refused
-- ============================================================================

/**
 * Raises the spend_limit alert the first time in a month the organization's usage reaches
 * its limit or a call is refused for it (once per month, even after the alert is
 * dismissed). Its words hold for the rest of the month whatever the usage figure.
 */
create or replace function private.note_spend_limit_reached(p_organization_id uuid, p_limit integer, p_usage bigint) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_month date := private.utc_month_start();
begin
  insert into public.credit_spend_months as m (organization_id, month_start, limit_reached_at)
  values (p_organization_id, v_month, now())
  on conflict (organization_id, month_start) do update
    set limit_reached_at = now(), updated_at = now()
    where m.limit_reached_at is null;
  if found then
    perform private.raise_alert(p_organization_id, 'spend_limit', 'warning', 'Monthly spend limit reached',
      pg_catalog.format('Usage this month reached the monthly spend limit of %s credits. Usage beyond it is refused until next month or a higher limit.',
        p_limit),
      jsonb_build_object('limit', p_limit, 'usage', p_usage, 'month', v_month),
      'spend_limit:' || pg_catalog.to_char(v_month, 'YYYY-MM'));
  end if;
end;
$$;
revoke all on function private.note_spend_limit_reached(uuid, integer, bigint) from public;

/**
 * Service role: a consumption or reservation of the organization was just refused with
 * PT429 (the billing function calls this when it answers 429, since the refused call rolled
 * back whatever it would have raised). Raises the month's spend_limit alert unless it was
 * raised already this month; idempotent. Returns this month's spend_limit alert id, or null
 * when the organization has no limit (removed since) or the month's alert was dismissed.
 * Direct SQL callers get the alert at the next movement reaching the limit or from a batch
 * refusal instead.
 */
create function public.note_spend_limit_refused(p_organization_id uuid) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_limit integer;
  v_month date := private.utc_month_start();
  v_id uuid;
begin
  perform private.require_service();
  if p_organization_id is null then
    raise exception 'organization id is required' using errcode = '22023';
  end if;
  select o.monthly_spend_limit into v_limit from public.organizations o where o.id = p_organization_id;
  if not found then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  if v_limit is null then
    return null;
  end if;
  perform private.note_spend_limit_reached(p_organization_id, v_limit, private.spend_limit_usage(p_organization_id));
  select a.id into v_id from public.billing_alerts a
   where a.organization_id = p_organization_id and a.kind = 'spend_limit'
     and a.dedupe_key = 'spend_limit:' || pg_catalog.to_char(v_month, 'YYYY-MM')
     and a.dismissed_at is null and a.resolved_at is null;
  return v_id;
end;
$$;
comment on function public.note_spend_limit_refused(uuid) is
  'Service role: raises this month''s spend_limit alert after a call was refused with PT429 (once per month).';
revoke all on function public.note_spend_limit_refused(uuid) from public, anon, authenticated;
grant execute on function public.note_spend_limit_refused(uuid) to service_role;
