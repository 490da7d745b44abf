-- Auto top-up: an organization that chose a credit pack, a threshold and a monthly limit is
-- charged for the pack off-session, on the card it saved at Checkout, whenever its spendable
-- balance is below the threshold, so it never runs dry. Metronome's rules are the bar:
--
--   * credits only after the payment succeeded (Stripe's payment_intent.succeeded, or the
--     PaymentIntent the job created reporting `succeeded`), once per PaymentIntent;
--   * a spending cap: at most `monthly_limit` top-ups per calendar month (UTC), and at most one
--     in flight per organization (a unique partial index, whatever runs at the same time);
--   * switched off after three failed payments in a row, with an alert saying so.
--
-- consume_credits is untouched: the scheduled job `auto_top_up` finds organizations below their
-- threshold (claim_auto_top_ups), so twenty consumptions crossing it at once still make one
-- top-up, and the hot path pays nothing for the feature. The card on file mirrors the Stripe
-- customer's default card as the webhook last read it (checkout.session.completed,
-- customer.updated, payment_method.attached / detached).

-- ============================================================================
-- Types
-- ============================================================================

-- Only used inside function bodies below, never in this migration's own statements, so the
-- new values need no commit of their own before this file goes on.
alter type public.billing_alert_kind add value if not exists 'auto_top_up_failed';

create type public.auto_top_up_status as enum ('pending', 'processing', 'requires_action', 'succeeded', 'failed');
comment on type public.auto_top_up_status is
  'pending: made by the job, no PaymentIntent yet; processing: PaymentIntent created, outcome not known; requires_action: the card needs the customer''s authentication; succeeded: paid and credited; failed: the payment failed.';

-- ============================================================================
-- Tables
-- ============================================================================

create table public.auto_top_up_settings (
  organization_id uuid primary key references public.organizations (id) on delete cascade,
  enabled boolean not null default true,
  credit_product_id uuid not null references public.credit_products (id) on delete restrict,
  threshold integer not null check (threshold between 1 and 1000000000),
  monthly_limit integer not null check (monthly_limit between 1 and 100),
  consecutive_failures integer not null default 0 check (consecutive_failures >= 0),
  disabled_reason text,
  updated_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.auto_top_up_settings enable row level security;

comment on table public.auto_top_up_settings is
  'An organization''s auto top-up: which credit pack to buy when the spendable balance is below the threshold. Written by set_auto_top_up and the payment outcomes.';
comment on column public.auto_top_up_settings.threshold is 'Spendable credits (get_credit_balance.total) below which a top-up is made.';
comment on column public.auto_top_up_settings.monthly_limit is 'Top-ups at most per calendar month (UTC); failed ones do not count.';
comment on column public.auto_top_up_settings.consecutive_failures is
  'Failed top-up payments since the last success; the third turns auto top-up off.';
comment on column public.auto_top_up_settings.disabled_reason is
  'Why auto top-up is off when the system turned it off (three failed payments); null when a person did, or while on.';

create table public.cards_on_file (
  organization_id uuid primary key references public.organizations (id) on delete cascade,
  stripe_payment_method_id text check (stripe_payment_method_id ~ '^pm_[A-Za-z0-9_]+$'),
  brand text check (char_length(brand) <= 40),
  last4 text check (last4 ~ '^[0-9]{4}$'),
  exp_month integer check (exp_month between 1 and 12),
  exp_year integer check (exp_year between 2000 and 2200),
  observed_at timestamptz not null,
  updated_at timestamptz not null default now(),
  check ((stripe_payment_method_id is null) = (last4 is null))
);
alter table public.cards_on_file enable row level security;

comment on table public.cards_on_file is
  'The card auto top-up charges: the Stripe customer''s default card (invoice_settings.default_payment_method), else the card it saved most recently; a null payment method means none.';
comment on column public.cards_on_file.brand is 'Stripe card "brand" (visa, mastercard, amex, ...).';
comment on column public.cards_on_file.last4 is 'Stripe card "last4".';
comment on column public.cards_on_file.observed_at is
  'When the customer was read from Stripe; an older reading never overwrites a newer one, whatever order webhooks arrive in.';

create table public.auto_top_ups (
  organization_id uuid not null references public.organizations (id) on delete restrict,
  id uuid not null default gen_random_uuid(),
  credit_product_id uuid not null references public.credit_products (id) on delete restrict,
  credits integer not null check (credits > 0),
  amount bigint not null check (amount >= 0),
  currency text not null check (currency ~ '^[a-z]{3}$'),
  status public.auto_top_up_status not null default 'pending',
  -- Deterministic: a retried create (a timeout, two jobs after a lease ran out) is the same
  -- PaymentIntent at Stripe, never a second charge.
  idempotency_key text generated always as ('auto_top_up:' || id::text) stored,
  stripe_payment_method_id text not null check (stripe_payment_method_id ~ '^pm_[A-Za-z0-9_]+$'),
  stripe_payment_intent_id text check (stripe_payment_intent_id ~ '^pi_[A-Za-z0-9_]+$'),
  balance_at_claim integer not null,
  threshold integer not null,
  failure_code text,
  failure_message text,
  authentication_url text check (authentication_url ~ '^https?://'),
  attempted_at timestamptz,
  finished_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (organization_id, id),
  constraint auto_top_ups_payment_intent_unique unique (organization_id, stripe_payment_intent_id)
);
alter table public.auto_top_ups enable row level security;

comment on table public.auto_top_ups is
  'One row per auto top-up: the pack charged off-session, its PaymentIntent and how it ended.';
comment on column public.auto_top_ups.amount is 'The pack''s price when the top-up was made, in the currency''s minor unit.';
comment on column public.auto_top_ups.idempotency_key is 'The Stripe idempotency key of its PaymentIntent.';
comment on column public.auto_top_ups.attempted_at is
  'When the job last took it up to create its PaymentIntent; another run takes it again two minutes later.';
comment on column public.auto_top_ups.authentication_url is
  'Where the owners complete a payment that needs authentication (3-D Secure).';

-- ============================================================================
-- Indexes
-- ============================================================================

-- At most one top-up in flight per organization, whoever makes it and whenever.
create unique index auto_top_ups_one_in_flight on public.auto_top_ups (organization_id)
  where status in ('pending', 'processing', 'requires_action');
-- The monthly limit and the Credits tab: an organization's top-ups, newest first.
create index auto_top_ups_organization_created_idx on public.auto_top_ups (organization_id, created_at desc);
-- The job: top-ups waiting for their PaymentIntent.
create index auto_top_ups_pending_idx on public.auto_top_ups (attempted_at nulls first) where status = 'pending';
create index auto_top_ups_credit_product_idx on public.auto_top_ups (credit_product_id);
create index auto_top_up_settings_enabled_idx on public.auto_top_up_settings (organization_id) where enabled;
create index auto_top_up_settings_credit_product_idx on public.auto_top_up_settings (credit_product_id);
create index auto_top_up_settings_updated_by_idx on public.auto_top_up_settings (updated_by) where updated_by is not null;

create trigger auto_top_up_settings_touch_updated_at before update on public.auto_top_up_settings
  for each row execute function private.touch_updated_at();
create trigger cards_on_file_touch_updated_at before update on public.cards_on_file
  for each row execute function private.touch_updated_at();
create trigger auto_top_ups_touch_updated_at before update on public.auto_top_ups
  for each row execute function private.touch_updated_at();

-- ============================================================================
-- RLS policies and privileges
-- ============================================================================

create policy "Members can read their organization's auto top-up setting"
  on public.auto_top_up_settings for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

create policy "Members can read their organization's card on file"
  on public.cards_on_file for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

create policy "Members can read their organization's auto top-ups"
  on public.auto_top_ups for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

-- Written only through the functions below.
revoke all on public.auto_top_up_settings, public.cards_on_file, public.auto_top_ups from anon;
revoke insert, update, delete, truncate on public.auto_top_up_settings, public.cards_on_file, public.auto_top_ups
  from authenticated, service_role;

-- ============================================================================
-- Functions: the setting
-- ============================================================================

/**
 * Turns auto top-up on (or changes it) for an organization: buy the credit pack p_product_code
 * whenever the spendable balance is below p_threshold, at most p_monthly_limit times per
 * calendar month (UTC). A null p_product_code turns it off. Owners and admins (42501 for
 * anyone else); PT404 for an unknown or inactive pack; 22023 for a threshold that is not 1 to
 * 1,000,000,000 or a monthly limit that is not 1 to 100. Turning it on again starts the count
 * of failures in a row afresh.
 */
create function public.set_auto_top_up(
  p_organization_id uuid,
  p_product_code text,
  p_threshold integer,
  p_monthly_limit integer default 3
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_product_id uuid;
begin
  perform private.require_organization_role(p_organization_id, 'admin');
  if not exists (select 1 from public.organizations o where o.id = p_organization_id) then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;

  if p_product_code is null then
    update public.auto_top_up_settings s
       set enabled = false, disabled_reason = null, updated_by = auth.uid()
     where s.organization_id = p_organization_id;
    return;
  end if;

  if p_threshold is null or p_threshold not between 1 and 1000000000 then
    raise exception 'threshold must be a whole number of credits from 1 to 1000000000' using errcode = '22023';
  end if;
  if p_monthly_limit is null or p_monthly_limit not between 1 and 100 then
    raise exception 'monthly limit must be from 1 to 100 top-ups' using errcode = '22023';
  end if;
  select p.id into v_product_id from public.credit_products p where p.code = p_product_code and p.is_active;
  if v_product_id is null then
    raise exception 'there is no active credit pack %', p_product_code using errcode = 'PT404';
  end if;

  insert into public.auto_top_up_settings as s
    (organization_id, enabled, credit_product_id, threshold, monthly_limit, consecutive_failures, disabled_reason, updated_by)
  values (p_organization_id, true, v_product_id, p_threshold, p_monthly_limit, 0, null, auth.uid())
  on conflict (organization_id) do update
    set enabled = true,
        credit_product_id = excluded.credit_product_id,
        threshold = excluded.threshold,
        monthly_limit = excluded.monthly_limit,
        consecutive_failures = 0,
        disabled_reason = null,
        updated_by = excluded.updated_by;
end;
$$;
comment on function public.set_auto_top_up(uuid, text, integer, integer) is
  'Owners and admins: buy p_product_code when the spendable balance is below p_threshold, at most p_monthly_limit times a month (UTC); a null product turns it off. 42501, PT404, 22023.';
revoke all on function public.set_auto_top_up(uuid, text, integer, integer) from public, anon;
grant execute on function public.set_auto_top_up(uuid, text, integer, integer) to authenticated, service_role;

-- ============================================================================
-- Functions: the card on file (the webhook)
-- ============================================================================

/**
 * Records the organization's card on file as read from Stripe at p_observed_at (a null
 * p_payment_method_id: the customer has no card). A reading older than the one stored changes
 * nothing, so webhooks delivered late or out of order never bring back a replaced card.
 * Marks p_event_id processed (when given) in the same transaction. Service role only.
 */
create function public.apply_card_on_file(
  p_event_id text,
  p_organization_id uuid,
  p_payment_method_id text,
  p_brand text,
  p_last4 text,
  p_exp_month integer,
  p_exp_year integer,
  p_observed_at timestamptz
) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  if p_observed_at is null then
    raise exception 'observed_at is required' using errcode = '22023';
  end if;
  if p_payment_method_id is not null and (p_payment_method_id !~ '^pm_[A-Za-z0-9_]+$' or p_last4 is null or p_last4 !~ '^[0-9]{4}$') then
    raise exception 'a card needs a Stripe payment method id (pm_...) and its last four digits' using errcode = '22023';
  end if;
  if not exists (select 1 from public.organizations o where o.id = p_organization_id) then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;

  insert into public.cards_on_file as c (organization_id, stripe_payment_method_id, brand, last4, exp_month, exp_year, observed_at)
  values (p_organization_id, p_payment_method_id,
          case when p_payment_method_id is not null then left(p_brand, 40) end,
          case when p_payment_method_id is not null then p_last4 end,
          case when p_payment_method_id is not null and p_exp_month between 1 and 12 then p_exp_month end,
          case when p_payment_method_id is not null and p_exp_year between 2000 and 2200 then p_exp_year end,
          p_observed_at)
  on conflict (organization_id) do update
    set stripe_payment_method_id = excluded.stripe_payment_method_id,
        brand = excluded.brand,
        last4 = excluded.last4,
        exp_month = excluded.exp_month,
        exp_year = excluded.exp_year,
        observed_at = excluded.observed_at
    where c.observed_at <= excluded.observed_at;

  perform private.mark_event_processed(p_event_id, p_organization_id);
end;
$$;
comment on function public.apply_card_on_file(text, uuid, text, text, text, integer, integer, timestamptz) is
  'Service role: records the card on file as read from Stripe (null: none); older readings never overwrite newer ones.';
revoke all on function public.apply_card_on_file(text, uuid, text, text, text, integer, integer, timestamptz) from public, anon, authenticated;
grant execute on function public.apply_card_on_file(text, uuid, text, text, text, integer, integer, timestamptz) to service_role;

-- ============================================================================
-- Functions: making top-ups (the job)
-- ============================================================================

/** The first instant of the current calendar month in UTC. */
create function private.utc_month_start() returns timestamptz
language sql
stable
set search_path = ''
as $$
  select pg_catalog.date_trunc('month', pg_catalog.now() at time zone 'UTC') at time zone 'UTC'
$$;
revoke all on function private.utc_month_start() from public;

/**
 * The job's claim. First makes one `pending` top-up for every organization that has auto
 * top-up on, a card on file and a Stripe customer, whose spendable balance
 * (get_credit_balance.total) is below its threshold, that has no top-up in flight and has not
 * used its monthly limit (top-ups that failed do not count). Then takes up to p_limit top-ups
 * that no run took up in the last two minutes, stamps them and returns them: pending ones
 * without a PaymentIntent (the job creates it), and ones whose PaymentIntent has no outcome
 * applied yet (the job reads it back from Stripe, so a run that stopped halfway and a webhook
 * that never came leave nothing stuck). Service role only.
 *
 * Runs at the same time cannot make two top-ups for one organization: the settings row is
 * taken `for update skip locked` and the unique partial index allows one in flight anyway.
 */
create function public.claim_auto_top_ups(p_limit integer default 50)
returns table (
  top_up_id uuid,
  organization_id uuid,
  stripe_customer_id text,
  stripe_payment_method_id text,
  amount bigint,
  currency text,
  credits integer,
  product_code text,
  idempotency_key text,
  stripe_payment_intent_id text
)
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
#variable_conflict use_column
declare
  v_due record;
  v_balance integer;
begin
  perform private.require_service();
  if p_limit is null or p_limit not between 1 and 500 then
    raise exception 'limit must be between 1 and 500' using errcode = '22023';
  end if;

  -- A payment left waiting for authentication for a day is over: the in-flight slot is freed
  -- (its failure was counted when it happened, and if the customer completes it after all,
  -- payment_intent.succeeded still credits it).
  update public.auto_top_ups t
     set status = 'failed', finished_at = now()
   where t.status = 'requires_action' and t.updated_at < now() - interval '1 day';

  for v_due in
    select s.organization_id, s.threshold, s.monthly_limit, p.id as product_id, p.credits, p.unit_amount, p.currency,
           c.stripe_payment_method_id
      from public.auto_top_up_settings s
      join public.credit_products p on p.id = s.credit_product_id and p.is_active
      join public.cards_on_file c on c.organization_id = s.organization_id and c.stripe_payment_method_id is not null
      join public.organizations o on o.id = s.organization_id and o.stripe_customer_id is not null
     where s.enabled
       and not exists (select 1 from public.auto_top_ups t
                        where t.organization_id = s.organization_id
                          and t.status in ('pending', 'processing', 'requires_action'))
     order by s.organization_id
       for update of s skip locked
  loop
    if (select count(*) from public.auto_top_ups t
         where t.organization_id = v_due.organization_id
           and t.status <> 'failed'
           and t.created_at >= private.utc_month_start()) >= v_due.monthly_limit then
      continue;
    end if;
    v_balance := (public.get_credit_balance(v_due.organization_id) ->> 'total')::integer;
    if v_balance >= v_due.threshold then
      continue;
    end if;
    insert into public.auto_top_ups (organization_id, credit_product_id, credits, amount, currency,
      stripe_payment_method_id, balance_at_claim, threshold)
    values (v_due.organization_id, v_due.product_id, v_due.credits, v_due.unit_amount, v_due.currency,
      v_due.stripe_payment_method_id, v_balance, v_due.threshold)
    on conflict (organization_id) where status in ('pending', 'processing', 'requires_action') do nothing;
  end loop;

  return query
  with due as (
    select t.organization_id, t.id
      from public.auto_top_ups t
     where ((t.status = 'pending' and t.stripe_payment_intent_id is null)
            -- A PaymentIntent whose outcome nobody has applied (the run that created it
            -- stopped before, and no webhook came): the job reads it back from Stripe.
            or (t.status in ('pending', 'processing') and t.stripe_payment_intent_id is not null))
       and (t.attempted_at is null or t.attempted_at < now() - interval '2 minutes')
     order by t.attempted_at nulls first, t.created_at
     limit p_limit
       for update skip locked
  )
  update public.auto_top_ups t
     set attempted_at = now()
    from due, public.organizations o, public.credit_products p
   where t.organization_id = due.organization_id and t.id = due.id
     and o.id = t.organization_id and p.id = t.credit_product_id
  returning t.id, t.organization_id, o.stripe_customer_id, t.stripe_payment_method_id, t.amount, t.currency,
            t.credits, p.code, t.idempotency_key, t.stripe_payment_intent_id;
end;
$$;
comment on function public.claim_auto_top_ups(integer) is
  'Service role (the auto_top_up job): makes one pending top-up per organization below its threshold (one in flight, monthly limit) and takes up to p_limit to charge, or to read back when their outcome is not applied yet.';
revoke all on function public.claim_auto_top_ups(integer) from public, anon, authenticated;
grant execute on function public.claim_auto_top_ups(integer) to service_role;

/**
 * Locks one top-up for an outcome and checks the PaymentIntent belongs to it. PT404 for a
 * top-up that does not exist (or is another organization's), PT409 for a PaymentIntent other
 * than the one already recorded.
 */
create function private.lock_auto_top_up(p_organization_id uuid, p_top_up_id uuid, p_payment_intent_id text)
returns public.auto_top_ups
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_top_up public.auto_top_ups;
begin
  if p_payment_intent_id is not null and p_payment_intent_id !~ '^pi_[A-Za-z0-9_]+$' then
    raise exception 'payment intent id must be a Stripe payment intent id (pi_...)' using errcode = '22023';
  end if;
  select * into v_top_up from public.auto_top_ups t
   where t.organization_id = p_organization_id and t.id = p_top_up_id
     for update;
  if v_top_up.id is null then
    raise exception 'auto top-up % not found', coalesce(p_top_up_id::text, 'null') using errcode = 'PT404';
  end if;
  if v_top_up.stripe_payment_intent_id is not null and p_payment_intent_id is not null
     and v_top_up.stripe_payment_intent_id <> p_payment_intent_id then
    raise exception 'auto top-up % is paid by %, not %', p_top_up_id, v_top_up.stripe_payment_intent_id, p_payment_intent_id
      using errcode = 'PT409';
  end if;
  return v_top_up;
end;
$$;
revoke all on function private.lock_auto_top_up(uuid, uuid, text) from public;

/**
 * The job created the top-up's PaymentIntent and Stripe has not said how it ends yet: records
 * its id and moves a pending top-up to processing. An outcome already recorded (the webhook
 * was faster) stays. Service role only.
 */
create function public.record_auto_top_up_payment_intent(
  p_organization_id uuid,
  p_top_up_id uuid,
  p_payment_intent_id text
) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  if p_payment_intent_id is null then
    raise exception 'payment intent id is required' using errcode = '22023';
  end if;
  perform private.lock_auto_top_up(p_organization_id, p_top_up_id, p_payment_intent_id);
  update public.auto_top_ups t
     set stripe_payment_intent_id = p_payment_intent_id,
         status = case when t.status = 'pending' then 'processing' else t.status end
   where t.organization_id = p_organization_id and t.id = p_top_up_id;
end;
$$;
comment on function public.record_auto_top_up_payment_intent(uuid, uuid, text) is
  'Service role: records the PaymentIntent the job created for a top-up (pending -> processing).';
revoke all on function public.record_auto_top_up_payment_intent(uuid, uuid, text) from public, anon, authenticated;
grant execute on function public.record_auto_top_up_payment_intent(uuid, uuid, text) to service_role;

-- ============================================================================
-- Functions: payment outcomes (the webhook and the job, in any order, any number of times)
-- ============================================================================

/**
 * A top-up's PaymentIntent succeeded: grants the pack's purchased credits once per
 * PaymentIntent (grant_credits keyed by its id), records the payment in the billing history
 * with its receipt, marks the top-up succeeded, resets the failures in a row and sends the
 * `auto_top_up.succeeded` notification once; marks p_event_id processed, all in one
 * transaction. A success after a recorded failure (the customer completed authentication)
 * still credits: the money was taken. Service role only. p_details as record_billing_history's.
 */
create function public.apply_payment_intent_succeeded(
  p_event_id text,
  p_organization_id uuid,
  p_top_up_id uuid,
  p_payment_intent_id text,
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
  v_top_up public.auto_top_ups;
  v_product_name text;
  v_grant jsonb;
begin
  perform private.require_service();
  if p_payment_intent_id is null then
    raise exception 'payment intent id is required' using errcode = '22023';
  end if;
  v_top_up := private.lock_auto_top_up(p_organization_id, p_top_up_id, p_payment_intent_id);
  select p.name into v_product_name from public.credit_products p where p.id = v_top_up.credit_product_id;

  v_grant := public.grant_credits(p_organization_id, v_top_up.credits, 'purchased', null, p_payment_intent_id);
  perform public.record_billing_history(p_organization_id, p_payment_intent_id, 'credit_purchase', 'paid',
    coalesce(p_amount, v_top_up.amount), coalesce(p_currency, v_top_up.currency), coalesce(p_occurred_at, now()),
    'Auto top-up: ' || v_product_name,
    coalesce(p_details, '{}') || jsonb_build_object('stripe_payment_intent_id', p_payment_intent_id));

  if v_top_up.status <> 'succeeded' then
    update public.auto_top_ups t
       set status = 'succeeded', stripe_payment_intent_id = p_payment_intent_id, finished_at = now(),
           failure_code = null, failure_message = null
     where t.organization_id = p_organization_id and t.id = p_top_up_id;
    update public.auto_top_up_settings s set consecutive_failures = 0 where s.organization_id = p_organization_id;
    perform private.enqueue_notification(p_organization_id, 'auto_top_up.succeeded',
      'auto_top_up.succeeded:' || p_payment_intent_id,
      jsonb_build_object('auto_top_up_id', p_top_up_id, 'stripe_payment_intent_id', p_payment_intent_id,
        'credits', v_top_up.credits, 'amount', coalesce(p_amount, v_top_up.amount),
        'currency', coalesce(p_currency, v_top_up.currency), 'product', v_product_name,
        'balance', v_grant -> 'balance'));
  end if;

  perform private.mark_event_processed(p_event_id, p_organization_id);
  return v_grant;
end;
$$;
comment on function public.apply_payment_intent_succeeded(text, uuid, uuid, text, bigint, text, timestamptz, jsonb) is
  'Service role: a top-up was paid: its credits once per PaymentIntent, a history row with the receipt, the auto_top_up.succeeded notification.';
revoke all on function public.apply_payment_intent_succeeded(text, uuid, uuid, text, bigint, text, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function public.apply_payment_intent_succeeded(text, uuid, uuid, text, bigint, text, timestamptz, jsonb) to service_role;

/**
 * A top-up's payment failed (p_failure_code as Stripe's last_payment_error.code:
 * card_declined, authentication_required, ...), reported by the webhook or by the job that got
 * Stripe's error: counted once per top-up, however often and in whatever order it is reported,
 * and never over a success. Records the top-up as failed (or requires_action, with
 * p_authentication_url, when the card needs the customer's authentication), the failed payment
 * in the history when there was a PaymentIntent, raises the `auto_top_up_failed` alert (email
 * to owners and admins; for authentication, the message carries the link to complete the
 * payment) and the `auto_top_up.failed` notification. The third failure in a row turns auto
 * top-up off, with a critical alert saying so. Marks p_event_id processed. Service role only.
 */
create function public.apply_payment_intent_failed(
  p_event_id text,
  p_organization_id uuid,
  p_top_up_id uuid,
  p_payment_intent_id text,
  p_failure_code text,
  p_failure_message text,
  p_authentication_url text default null,
  p_occurred_at timestamptz default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_top_up public.auto_top_ups;
  v_product_name text;
  v_code text := coalesce(nullif(btrim(p_failure_code), ''), 'payment_failed');
  v_needs_authentication boolean;
  v_failures integer;
  v_disabled boolean := false;
  v_message text;
begin
  perform private.require_service();
  if p_authentication_url is not null and p_authentication_url !~ '^https?://' then
    raise exception 'authentication url must be an http(s) URL' using errcode = '22023';
  end if;
  v_top_up := private.lock_auto_top_up(p_organization_id, p_top_up_id, p_payment_intent_id);

  -- Once per top-up: a redelivery, the job and the webhook reporting the same failure, or a
  -- failure arriving after the success all change nothing more.
  if v_top_up.status in ('succeeded', 'failed', 'requires_action') then
    perform private.mark_event_processed(p_event_id, p_organization_id);
    return jsonb_build_object('auto_top_up_id', p_top_up_id, 'status', v_top_up.status, 'counted', false);
  end if;

  v_needs_authentication := v_code = 'authentication_required';
  select p.name into v_product_name from public.credit_products p where p.id = v_top_up.credit_product_id;

  update public.auto_top_ups t
     set status = case when v_needs_authentication then 'requires_action' else 'failed' end::public.auto_top_up_status,
         stripe_payment_intent_id = coalesce(p_payment_intent_id, t.stripe_payment_intent_id),
         failure_code = v_code,
         failure_message = left(p_failure_message, 500),
         authentication_url = p_authentication_url,
         finished_at = case when v_needs_authentication then null else now() end
   where t.organization_id = p_organization_id and t.id = p_top_up_id;

  update public.auto_top_up_settings s
     set consecutive_failures = s.consecutive_failures + 1
   where s.organization_id = p_organization_id
  returning s.consecutive_failures into v_failures;

  if p_payment_intent_id is not null then
    perform public.record_billing_history(p_organization_id, p_payment_intent_id, 'credit_purchase', 'failed',
      v_top_up.amount, v_top_up.currency, coalesce(p_occurred_at, now()), 'Auto top-up: ' || v_product_name,
      jsonb_build_object('stripe_payment_intent_id', p_payment_intent_id));
  end if;

  v_message := case
    when v_needs_authentication then pg_catalog.format(
      'The card on file needs your authentication to pay the auto top-up (%s). Complete the payment: %s',
      v_product_name, coalesce(p_authentication_url, '(open the billing dashboard)'))
    else pg_catalog.format('The auto top-up (%s) could not be charged: %s.', v_product_name,
      coalesce(nullif(btrim(p_failure_message), ''), v_code))
  end;
  perform private.raise_alert(p_organization_id, 'auto_top_up_failed', 'critical',
    case when v_needs_authentication then 'Auto top-up needs your authentication' else 'Auto top-up payment failed' end,
    v_message,
    jsonb_build_object('auto_top_up_id', p_top_up_id, 'stripe_payment_intent_id', p_payment_intent_id,
      'failure_code', v_code, 'authentication_url', p_authentication_url, 'failures_in_a_row', v_failures),
    'auto_top_up_failed:' || p_top_up_id);
  perform private.enqueue_notification(p_organization_id, 'auto_top_up.failed', 'auto_top_up.failed:' || p_top_up_id,
    jsonb_build_object('auto_top_up_id', p_top_up_id, 'stripe_payment_intent_id', p_payment_intent_id,
      'failure_code', v_code, 'failure_message', p_failure_message, 'authentication_url', p_authentication_url,
      'credits', v_top_up.credits, 'amount', v_top_up.amount, 'currency', v_top_up.currency,
      'failures_in_a_row', v_failures));

  if v_failures >= 3 then
    update public.auto_top_up_settings s
       set enabled = false, disabled_reason = 'three top-up payments failed in a row'
     where s.organization_id = p_organization_id and s.enabled;
    v_disabled := found;
    if v_disabled then
      perform private.raise_alert(p_organization_id, 'auto_top_up_failed', 'critical', 'Auto top-up turned off',
        'Three auto top-up payments failed in a row, so auto top-up is now off. Update the card on file, then turn it on again in the Credits tab.',
        jsonb_build_object('auto_top_up_id', p_top_up_id, 'failures_in_a_row', v_failures, 'disabled', true),
        'auto_top_up_disabled:' || p_top_up_id);
    end if;
  end if;

  perform private.mark_event_processed(p_event_id, p_organization_id);
  return jsonb_build_object('auto_top_up_id', p_top_up_id,
    'status', case when v_needs_authentication then 'requires_action' else 'failed' end,
    'counted', true, 'failures_in_a_row', v_failures, 'disabled', v_disabled);
end;
$$;
comment on function public.apply_payment_intent_failed(text, uuid, uuid, text, text, text, text, timestamptz) is
  'Service role: a top-up payment failed: counted once per top-up, alert + email + notification; the third in a row turns auto top-up off.';
revoke all on function public.apply_payment_intent_failed(text, uuid, uuid, text, text, text, text, timestamptz) from public, anon, authenticated;
grant execute on function public.apply_payment_intent_failed(text, uuid, uuid, text, text, text, text, timestamptz) to service_role;

-- ============================================================================
-- The job
-- ============================================================================

insert into private.scheduled_jobs (name, schedule, description, kind, sql_command, function_path) values
  ('auto_top_up', '10 seconds',
   'Makes auto top-ups for organizations whose spendable balance is below their threshold and charges the card on file off-session.',
   'function', null, 'auto-top-up/run');

do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform private.schedule_jobs_on_cron();
  end if;
end;
$$;
