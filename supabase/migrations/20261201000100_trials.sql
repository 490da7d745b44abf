-- Trials: a free trial grants the plan's trial allowance (never the monthly or annual one),
-- expiring when the trial ends, and each owner gets one trial. The database decides both,
-- so every caller gets the rule: the webhook only reports which invoice was paid, and the
-- grant is taken from our catalog and from whether that invoice pays for the trial.
--
-- Who had a trial is recorded when a trial starts (for every owner of the organization at
-- that moment) and whenever someone becomes an owner of an organization that had one, so
-- leaving or handing over the organization, or creating a fresh one, does not give the
-- same person a second trial. Checkout asks `trial_eligibility` before offering a trial;
-- two checkouts opened at once and both paid still grant one trial allowance, because the
-- first trial recorded is the only one whose invoice grants it.

-- ============================================================================
-- Catalog
-- ============================================================================

alter table public.subscription_plans
  add column trial_credits integer not null default 0,
  add constraint subscription_plans_trial_credits_not_negative check (trial_credits >= 0),
  add constraint subscription_plans_trial_credits_within_a_month check (trial_credits <= monthly_credits);

comment on column public.subscription_plans.trial_credits is
  'Subscription credits granted once for a free trial (on its $0 invoice); they expire when the trial ends. Never more than one monthly allowance.';

-- ============================================================================
-- Tables
-- ============================================================================

create table public.subscription_trials (
  id uuid primary key default gen_random_uuid(),
  -- Kept when the organization goes: the people who had the trial keep having had it.
  organization_id uuid references public.organizations (id) on delete set null,
  stripe_subscription_id text not null unique check (stripe_subscription_id ~ '^sub_[A-Za-z0-9_]+$'),
  trial_start timestamptz not null,
  grants_allowance boolean not null,
  created_at timestamptz not null default now()
);
alter table public.subscription_trials enable row level security;

comment on table public.subscription_trials is
  'One row per Stripe subscription that started with a trial, recorded when the trial is first seen. Written only by the trial functions.';
comment on column public.subscription_trials.trial_start is 'Stripe "trial_start" when the trial was first seen (or the time it was recorded).';
comment on column public.subscription_trials.grants_allowance is
  'True when neither the organization nor any of its owners had a trial before: only then does the trial invoice grant the plan''s trial credits.';

create table public.trial_owners (
  user_id uuid not null references auth.users (id) on delete cascade,
  subscription_trial_id uuid not null references public.subscription_trials (id) on delete cascade,
  organization_id uuid references public.organizations (id) on delete set null,
  created_at timestamptz not null default now(),
  primary key (user_id, subscription_trial_id)
);
alter table public.trial_owners enable row level security;

comment on table public.trial_owners is
  'Who has had a trial: every owner of an organization when its trial started, and everyone who became an owner of it later. Such a user gets no further trial. Written only by the trial functions.';

-- ============================================================================
-- Indexes
-- ============================================================================

create index subscription_trials_organization_id_idx on public.subscription_trials (organization_id);
create index trial_owners_subscription_trial_id_idx on public.trial_owners (subscription_trial_id);
create index trial_owners_organization_id_idx on public.trial_owners (organization_id);

-- ============================================================================
-- RLS policies and privileges
-- ============================================================================

create policy "Members can read their organization's trials"
  on public.subscription_trials for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

create policy "Members can read who had their organization's trials"
  on public.trial_owners for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

-- Only the trial functions below write these; the service role reads them but cannot erase
-- who had a trial.
revoke insert, update, delete, truncate on public.subscription_trials, public.trial_owners
  from anon, authenticated, service_role;
revoke all on public.subscription_trials, public.trial_owners from anon;

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * Why the organization may not start a trial, or null when it may: 'organization_had_trial'
 * when it had one itself, 'trial_used' when one of its owners (or p_user_id, the member who
 * would check out) had a trial in any organization.
 */
create function private.trial_blocker(p_organization_id uuid, p_user_id uuid default null) returns text
language sql
stable
security definer
set search_path = ''
as $$
  select case
    when exists (select 1 from public.subscription_trials t where t.organization_id = p_organization_id)
      then 'organization_had_trial'
    when exists (
      select 1
        from public.trial_owners o
       where o.user_id = p_user_id
          or o.user_id in (select m.user_id from public.organization_members m
                            where m.organization_id = p_organization_id and m.role = 'owner'))
      then 'trial_used'
  end;
$$;
revoke all on function private.trial_blocker(uuid, uuid) from public;

/**
 * Records that a subscription started with a trial (once), deciding whether it grants the
 * trial allowance, and marks every current owner as having had a trial. Each owner is locked
 * (in a fixed order) first, so two trials of one owner recorded at once are decided one
 * after the other and only the first grants. The caller holds the organization's lock
 * (organization first, then owners: one order for every path).
 */
create function private.record_subscription_trial(p_subscription_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_subscription record;
  v_trial_id uuid;
  v_owner uuid;
begin
  select s.organization_id, s.stripe_subscription_id, s.trial_start, s.trial_end, s.created_at into v_subscription
    from public.organization_subscriptions s
   where s.id = p_subscription_id;
  if v_subscription.trial_end is null then
    return;
  end if;

  for v_owner in
    select m.user_id from public.organization_members m
     where m.organization_id = v_subscription.organization_id and m.role = 'owner'
     order by m.user_id
  loop
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('trial_owner:' || v_owner::text, 0));
  end loop;

  select t.id into v_trial_id from public.subscription_trials t
   where t.stripe_subscription_id = v_subscription.stripe_subscription_id;
  if v_trial_id is null then
    insert into public.subscription_trials (organization_id, stripe_subscription_id, trial_start, grants_allowance)
    values (v_subscription.organization_id, v_subscription.stripe_subscription_id,
            coalesce(v_subscription.trial_start, v_subscription.created_at),
            private.trial_blocker(v_subscription.organization_id) is null)
    returning id into v_trial_id;
  end if;

  insert into public.trial_owners (user_id, subscription_trial_id, organization_id)
  select m.user_id, v_trial_id, v_subscription.organization_id
    from public.organization_members m
   where m.organization_id = v_subscription.organization_id and m.role = 'owner'
  on conflict do nothing;
end;
$$;
revoke all on function private.record_subscription_trial(uuid) from public;

/**
 * A trial's credits end when the trial does: if Stripe reports an earlier trial end (the
 * trial was ended early), what is left of the trial's allowance expires then (or now, if
 * that moment has passed). The caller holds the organization's lock.
 */
create function private.end_trial_credits_at_trial_end(p_subscription_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_subscription record;
begin
  select s.organization_id, s.trial_end into v_subscription
    from public.organization_subscriptions s
   where s.id = p_subscription_id;
  if v_subscription.trial_end is null then
    return;
  end if;
  update public.credit_lots l
     set expires_at = greatest(v_subscription.trial_end, now())
   where l.organization_id = v_subscription.organization_id
     and l.subscription_id = p_subscription_id
     and l.period_start < v_subscription.trial_end
     and l.remaining > 0
     and l.expires_at > greatest(v_subscription.trial_end, now());
  if found then
    perform private.expire_organization_lots(v_subscription.organization_id);
  end if;
end;
$$;
revoke all on function private.end_trial_credits_at_trial_end(uuid) from public;

/**
 * Whenever Stripe's trial of a subscription is applied: the trial is recorded (the first
 * time), and a trial end moved earlier cuts the trial's credits short.
 */
create function private.on_subscription_trial_applied() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Already held when apply_stripe_subscription is the writer; taken for any other.
  perform private.lock_organization(new.organization_id);
  perform private.record_subscription_trial(new.id);
  if tg_op = 'UPDATE' and old.trial_end is distinct from new.trial_end then
    perform private.end_trial_credits_at_trial_end(new.id);
  end if;
  return null;
end;
$$;
revoke all on function private.on_subscription_trial_applied() from public;

create trigger organization_subscriptions_record_trial
  after insert or update of trial_start, trial_end on public.organization_subscriptions
  for each row when (new.trial_end is not null)
  execute function private.on_subscription_trial_applied();

/**
 * Someone who becomes an owner of an organization that had a trial has had that trial too:
 * handing an organization over (or adding an owner and leaving) does not make a trial new.
 */
create function private.on_owner_added() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- The organization's lock orders this with recording a trial: either the trial sees the
  -- new owner, or the new owner sees the trial.
  perform private.lock_organization(new.organization_id);
  insert into public.trial_owners (user_id, subscription_trial_id, organization_id)
  select new.user_id, t.id, t.organization_id
    from public.subscription_trials t
   where t.organization_id = new.organization_id
  on conflict do nothing;
  return null;
end;
$$;
revoke all on function private.on_owner_added() from public;

create trigger organization_members_record_trial_owner
  after insert or update of role on public.organization_members
  for each row when (new.role = 'owner')
  execute function private.on_owner_added();

/**
 * Whether the organization can start a subscription with a free trial: not if it had a
 * trial itself, nor if one of its owners (or the calling owner or admin, who would check
 * out) had a trial in any organization. Members of the organization and the service role;
 * 42501 for anyone else. One row: eligible, and the reason when not
 * ('organization_had_trial' or 'trial_used').
 */
create function public.trial_eligibility(p_organization_id uuid)
returns table (eligible boolean, reason text)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_role public.organization_role;
  v_reason text;
begin
  v_role := private.require_organization_role(p_organization_id, 'member');
  -- The member who would check out counts too; a plain member cannot check out.
  v_reason := private.trial_blocker(p_organization_id,
    case when v_role in ('owner', 'admin') then (select auth.uid()) end);
  return query select v_reason is null, v_reason;
end;
$$;
comment on function public.trial_eligibility(uuid) is
  'Members and the service role: whether a checkout for this organization may include a free trial, and why not.';
revoke all on function public.trial_eligibility(uuid) from public, anon, authenticated;
grant execute on function public.trial_eligibility(uuid) to authenticated, service_role;

-- ============================================================================
-- Paid invoices: the trial's allowance for a trial invoice
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
  update public.billing_alerts a
     set dismissed_at = now()
   where a.organization_id = p_organization_id and a.kind = 'payment_failed' and a.dismissed_at is null
     and a.dedupe_key = 'payment_failed:' || p_invoice_id;

  perform private.mark_event_processed(p_event_id, p_organization_id);
  return v_allocation;
end;
$$;
comment on function public.apply_invoice_paid(text, uuid, text, text, timestamptz, timestamptz, bigint, text, timestamptz, jsonb) is
  'Service role: allocates a paid period''s credits once per invoice (a trial invoice: the plan''s trial credits, until the trial ends), records the payment, clears past due.';

-- ============================================================================
-- Subscriptions that started a trial before this migration
-- ============================================================================

do $$
declare
  v_id uuid;
begin
  for v_id in
    select s.id from public.organization_subscriptions s
     where s.trial_end is not null
     order by coalesce(s.trial_start, s.created_at), s.id
  loop
    perform private.record_subscription_trial(v_id);
  end loop;
end;
$$;
