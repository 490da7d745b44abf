-- Distribution keys: the schema made ready to shard by organization on a distributed Postgres
-- (Citus), without needing one. A distributed table can only enforce a primary key, a unique
-- constraint or a foreign key that includes its distribution column, and a query is routed to
-- one shard only when it names that column. So every organization-scoped table now carries
-- `organization_id` in its primary key and in every unique constraint, foreign keys between
-- organization-scoped tables include it, and the functions that relied on a global unique key
-- (`on conflict`, "belongs to another organization") now use the per-organization one.
--
-- Key order: the composite keys are (id, organization_id), not the other way round. The
-- existing lookups by id keep their index (so consume_credits costs what it did), and rows
-- keyed by a growing identity still append at the right edge of the primary-key index instead
-- of landing at random places within one organization's range.
--
-- What is not distributed by organization, and why (supabase/tests/23-distribution-ready
-- asserts exactly this list):
--   * the catalog (subscription_plans, credit_events, credit_products,
--     private.retired_stripe_prices): small, read everywhere, written by the operator: reference
--     tables;
--   * private.stripe_object_owners (new, below): which organization each Stripe customer,
--     subscription and payment reference belongs to. Stripe ids are global, and the webhook
--     must find an organization from a customer id before it knows the organization: a
--     reference table, one row per Stripe object, written once;
--   * subscription_trials and trial_owners: "one trial per owner" is a rule about a user across
--     every organization they own, looked up by user: reference tables (written once per trial);
--   * stripe_events (the webhook inbox, keyed by Stripe's event id, stored before the
--     organization is known), job_runs and private.scheduled_jobs (the scheduler's own
--     bookkeeping): local tables on the coordinator, where the webhook and the jobs run.
-- A reference or local table cannot hold a foreign key to a distributed table, so the inbox's
-- and the trial tables' organization_id become plain columns (they were `on delete set null`:
-- a trial or an event outlives its organization as a record; nothing reads them by a deleted
-- organization).

-- ============================================================================
-- Stripe object owners (the global lookup)
-- ============================================================================

create table private.stripe_object_owners (
  stripe_object_id text primary key,
  organization_id uuid not null,
  created_at timestamptz not null default now()
);
alter table private.stripe_object_owners enable row level security;
revoke all on private.stripe_object_owners from public, anon, authenticated;

comment on table private.stripe_object_owners is
  'The one organization each Stripe customer (cus_), subscription (sub_) and billing reference (in_, ch_, ...) belongs to. Stripe ids are global, so this is the only table keyed by them alone: a Citus reference table.';

insert into private.stripe_object_owners (stripe_object_id, organization_id)
select o.stripe_customer_id, o.id from public.organizations o where o.stripe_customer_id is not null
union all
select s.stripe_subscription_id, s.organization_id from public.organization_subscriptions s
union all
select h.stripe_reference, h.organization_id from public.billing_history h
on conflict (stripe_object_id) do nothing;

create index stripe_object_owners_organization_id_idx on private.stripe_object_owners (organization_id);

/**
 * Trigger on the tables that hold a Stripe id (organizations, organization_subscriptions,
 * billing_history): records that the id belongs to the row's organization, or fails with
 * PT409 when it already belongs to another; a replaced id is released. A trigger, so the rule
 * holds whichever function (or the service role by hand) writes the id. The primary key makes
 * it exact under concurrency: a second organization's claim waits for the first and then
 * sees it. Arguments: the id column, what the id is (for the message), the organization column.
 */
create function private.claim_stripe_object()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row jsonb := to_jsonb(new);
  v_id text := v_row ->> tg_argv[0];
  v_previous text := case when tg_op = 'UPDATE' then to_jsonb(old) ->> tg_argv[0] end;
  v_organization_id uuid := (v_row ->> tg_argv[2])::uuid;
  v_owner uuid;
begin
  if v_previous is not null and v_previous is distinct from v_id then
    -- The replaced id is no longer the organization's: its events are ignored, as those of
    -- any Stripe object we do not know.
    delete from private.stripe_object_owners o
     where o.stripe_object_id = v_previous and o.organization_id = v_organization_id;
  end if;
  if v_id is null then
    return null;
  end if;
  insert into private.stripe_object_owners (stripe_object_id, organization_id)
  values (v_id, v_organization_id)
  on conflict (stripe_object_id) do nothing;
  if not found then
    select o.organization_id into v_owner from private.stripe_object_owners o where o.stripe_object_id = v_id;
    if v_owner <> v_organization_id then
      raise exception '% % belongs to another organization', tg_argv[1], v_id using errcode = 'PT409';
    end if;
  end if;
  return null;
end;
$$;
revoke all on function private.claim_stripe_object() from public;

create trigger organizations_claim_stripe_customer
  after insert or update of stripe_customer_id on public.organizations
  for each row execute function private.claim_stripe_object('stripe_customer_id', 'customer', 'id');
create trigger organization_subscriptions_claim_stripe_subscription
  after insert or update of stripe_subscription_id on public.organization_subscriptions
  for each row execute function private.claim_stripe_object('stripe_subscription_id', 'subscription', 'organization_id');
create trigger billing_history_claim_stripe_reference
  after insert or update of stripe_reference on public.billing_history
  for each row execute function private.claim_stripe_object('stripe_reference', 'stripe reference', 'organization_id');

/** An organization's Stripe objects are released with it. */
create function private.release_stripe_objects()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from private.stripe_object_owners o where o.organization_id = old.id;
  return null;
end;
$$;
revoke all on function private.release_stripe_objects() from public;

create trigger organizations_release_stripe_objects
  after delete on public.organizations
  for each row execute function private.release_stripe_objects();

/**
 * The organization a Stripe customer belongs to, or null: how the webhook finds the
 * organization of an event that does not name it. Service role only.
 */
create function public.organization_of_stripe_customer(p_stripe_customer_id text)
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  return (select o.organization_id from private.stripe_object_owners o where o.stripe_object_id = p_stripe_customer_id);
end;
$$;
revoke all on function public.organization_of_stripe_customer(text) from public, anon, authenticated;
grant execute on function public.organization_of_stripe_customer(text) to service_role;

-- ============================================================================
-- Keys: organization_id in every primary key and unique constraint
-- ============================================================================

-- Foreign keys that point at a key about to change go first, and come back composite below.
alter table public.credit_transactions drop constraint credit_transactions_lot_id_fkey;
alter table public.credit_transactions drop constraint credit_transactions_consumption_id_fkey;
alter table public.credit_lots drop constraint credit_lots_subscription_id_fkey;
alter table public.notification_emails drop constraint notification_emails_alert_id_fkey;
alter table public.notification_attempts drop constraint notification_attempts_notification_id_fkey;
alter table public.notification_attempts drop constraint notification_attempts_email_id_fkey;

-- The organization's customer is unique through private.stripe_object_owners now.
alter table public.organizations drop constraint organizations_stripe_customer_id_key;

alter table public.organization_subscriptions drop constraint organization_subscriptions_pkey,
  add constraint organization_subscriptions_pkey primary key (id, organization_id);
alter table public.organization_subscriptions drop constraint organization_subscriptions_stripe_subscription_id_key,
  add constraint organization_subscriptions_stripe_subscription_id_key unique (organization_id, stripe_subscription_id);

alter table public.billing_alerts drop constraint billing_alerts_pkey,
  add constraint billing_alerts_pkey primary key (id, organization_id);

alter table public.credit_lots drop constraint credit_lots_pkey,
  add constraint credit_lots_pkey primary key (id, organization_id);

alter table public.credit_consumptions drop constraint credit_consumptions_pkey,
  add constraint credit_consumptions_pkey primary key (id, organization_id);

alter table public.credit_transactions drop constraint credit_transactions_pkey,
  add constraint credit_transactions_pkey primary key (id, organization_id);

alter table public.credit_clawbacks drop constraint credit_clawbacks_pkey,
  add constraint credit_clawbacks_pkey primary key (id, organization_id);

alter table public.billing_history drop constraint billing_history_pkey,
  add constraint billing_history_pkey primary key (id, organization_id);
alter table public.billing_history drop constraint billing_history_stripe_reference_key,
  add constraint billing_history_stripe_reference_key unique (organization_id, stripe_reference);

alter table public.notifications drop constraint notifications_pkey,
  add constraint notifications_pkey primary key (id, organization_id);
alter table public.notifications drop constraint notifications_event_key_key,
  add constraint notifications_event_key_key unique (organization_id, event_key);

alter table public.notification_emails drop constraint notification_emails_pkey,
  add constraint notification_emails_pkey primary key (id, organization_id);
alter table public.notification_emails drop constraint notification_emails_alert_id_user_id_key,
  add constraint notification_emails_alert_id_user_id_key unique (alert_id, organization_id, user_id);

-- Every delivery attempt belongs to its notification's organization.
alter table public.notification_attempts add column organization_id uuid;
update public.notification_attempts a
   set organization_id = coalesce(
     (select n.organization_id from public.notifications n where n.id = a.notification_id),
     (select e.organization_id from public.notification_emails e where e.id = a.email_id));
-- No foreign key of its own to organizations: the composite ones to its notification or email
-- (below) already tie it to an organization, and go with it.
alter table public.notification_attempts alter column organization_id set not null;
alter table public.notification_attempts drop constraint notification_attempts_pkey,
  add constraint notification_attempts_pkey primary key (id, organization_id);
comment on column public.notification_attempts.organization_id is 'The organization of the notification or email attempted.';

-- ============================================================================
-- Foreign keys between organization-scoped tables: composite
-- ============================================================================

alter table public.credit_transactions
  add constraint credit_transactions_lot_id_fkey foreign key (lot_id, organization_id)
    references public.credit_lots (id, organization_id) on delete restrict,
  add constraint credit_transactions_consumption_id_fkey foreign key (consumption_id, organization_id)
    references public.credit_consumptions (id, organization_id) on delete restrict;
drop index public.credit_transactions_lot_id_idx;
create index credit_transactions_lot_id_idx on public.credit_transactions (lot_id, organization_id);
drop index public.credit_transactions_consumption_id_idx;
create index credit_transactions_consumption_id_idx on public.credit_transactions (consumption_id, organization_id)
  where consumption_id is not null;

-- Deleting a subscription clears the lot's link to it, never the lot's organization.
alter table public.credit_lots
  add constraint credit_lots_subscription_id_fkey foreign key (subscription_id, organization_id)
    references public.organization_subscriptions (id, organization_id) on delete set null (subscription_id);
drop index public.credit_lots_subscription_id_idx;
create index credit_lots_subscription_id_idx on public.credit_lots (subscription_id, organization_id)
  where subscription_id is not null;

alter table public.notification_emails
  add constraint notification_emails_alert_id_fkey foreign key (alert_id, organization_id)
    references public.billing_alerts (id, organization_id) on delete cascade;

alter table public.notification_attempts
  add constraint notification_attempts_notification_id_fkey foreign key (notification_id, organization_id)
    references public.notifications (id, organization_id) on delete cascade,
  add constraint notification_attempts_email_id_fkey foreign key (email_id, organization_id)
    references public.notification_emails (id, organization_id) on delete cascade;
drop index public.notification_attempts_notification_idx;
create index notification_attempts_notification_idx on public.notification_attempts (notification_id, organization_id)
  where notification_id is not null;
drop index public.notification_attempts_email_idx;
create index notification_attempts_email_idx on public.notification_attempts (email_id, organization_id)
  where email_id is not null;

-- Reference and local tables cannot point at a distributed one (see the top of this file).
alter table public.stripe_events drop constraint stripe_events_organization_id_fkey;
alter table public.subscription_trials drop constraint subscription_trials_organization_id_fkey;
alter table public.trial_owners drop constraint trial_owners_organization_id_fkey;
comment on column public.stripe_events.organization_id is
  'The organization the event was applied to, once known. No foreign key: the inbox is a coordinator-local table under Citus, and an event stays on record after its organization is gone.';
comment on column public.subscription_trials.organization_id is
  'The organization the trial was for. No foreign key: trials are per owner across organizations (a Citus reference table), and stay on record after the organization is gone.';
comment on column public.trial_owners.organization_id is
  'The organization the trial was for. No foreign key, as on subscription_trials.';

-- ============================================================================
-- Stripe ids: owned through private.stripe_object_owners, conflicts per organization
-- ============================================================================

create or replace function public.link_stripe_customer(p_event_id text, p_organization_id uuid, p_stripe_customer_id text)
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
  update public.organizations o set stripe_customer_id = p_stripe_customer_id
   where o.id = p_organization_id and o.stripe_customer_id is null;
  perform private.mark_event_processed(p_event_id, p_organization_id);
end;
$$;

create or replace function public.replace_stripe_customer(p_organization_id uuid, p_previous_customer_id text, p_stripe_customer_id text)
returns text
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
  update public.organizations o set stripe_customer_id = p_stripe_customer_id where o.id = p_organization_id;
  return p_stripe_customer_id;
end;
$$;

create or replace function public.apply_stripe_subscription(p_event_id text, p_organization_id uuid, p_stripe_subscription_id text, p_stripe_customer_id text, p_stripe_price_id text, p_status text, p_current_period_start timestamp with time zone, p_current_period_end timestamp with time zone, p_trial_start timestamp with time zone, p_trial_end timestamp with time zone, p_cancel_at_period_end boolean, p_cancel_at timestamp with time zone, p_canceled_at timestamp with time zone, p_ended_at timestamp with time zone, p_observed_at timestamp with time zone)
returns uuid
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
  select s.id, s.status, s.last_stripe_event_at into v_existing
    from public.organization_subscriptions s
   where s.organization_id = p_organization_id and s.stripe_subscription_id = p_stripe_subscription_id
     for update;
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
  on conflict (organization_id, stripe_subscription_id) do update set
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

create or replace function public.record_billing_history(p_organization_id uuid, p_stripe_reference text, p_kind text, p_status text, p_amount bigint, p_currency text, p_occurred_at timestamp with time zone, p_description text DEFAULT ''::text, p_details jsonb DEFAULT '{}'::jsonb)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  perform private.require_service();
  if p_stripe_reference is null or p_stripe_reference !~ '^[A-Za-z0-9_]{3,255}$' then
    raise exception 'stripe reference must be a Stripe object id' using errcode = '22023';
  end if;
  if p_kind is null or p_kind not in ('subscription_invoice', 'credit_purchase', 'refund') then
    raise exception 'invalid billing history kind %', coalesce(p_kind, 'null') using errcode = '22023';
  end if;
  if p_status is null or p_status not in ('open', 'failed', 'void', 'paid', 'partially_refunded', 'refunded') then
    raise exception 'invalid billing history status %', coalesce(p_status, 'null') using errcode = '22023';
  end if;
  if p_amount is null or p_amount < 0 then
    raise exception 'amount must be zero or positive (minor units)' using errcode = '22023';
  end if;
  if p_currency is null or lower(p_currency) !~ '^[a-z]{3}$' then
    raise exception 'currency must be a three-letter ISO code' using errcode = '22023';
  end if;
  if p_occurred_at is null then
    raise exception 'occurred_at is required' using errcode = '22023';
  end if;
  if p_details is null or jsonb_typeof(p_details) <> 'object' then
    raise exception 'details must be a JSON object' using errcode = '22023';
  end if;
  if not exists (select 1 from public.organizations o where o.id = p_organization_id) then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;


  insert into public.billing_history as h (
    organization_id, stripe_reference, kind, status, description, amount, currency,
    stripe_invoice_id, stripe_payment_intent_id, stripe_charge_id, stripe_checkout_session_id,
    stripe_refund_id, invoice_url, invoice_pdf_url, receipt_url, period_start, period_end, occurred_at
  ) values (
    p_organization_id, p_stripe_reference, p_kind::public.billing_history_kind,
    p_status::public.billing_history_status, coalesce(p_description, ''), p_amount, lower(p_currency),
    p_details ->> 'stripe_invoice_id', p_details ->> 'stripe_payment_intent_id',
    p_details ->> 'stripe_charge_id', p_details ->> 'stripe_checkout_session_id',
    p_details ->> 'stripe_refund_id', p_details ->> 'invoice_url', p_details ->> 'invoice_pdf_url',
    p_details ->> 'receipt_url', (p_details ->> 'period_start')::timestamptz,
    (p_details ->> 'period_end')::timestamptz, p_occurred_at
  )
  on conflict (organization_id, stripe_reference) do update set
    status = greatest(h.status, excluded.status),
    amount = case when excluded.status >= h.status then excluded.amount else h.amount end,
    description = case when excluded.description <> '' then excluded.description else h.description end,
    stripe_invoice_id = coalesce(excluded.stripe_invoice_id, h.stripe_invoice_id),
    stripe_payment_intent_id = coalesce(excluded.stripe_payment_intent_id, h.stripe_payment_intent_id),
    stripe_charge_id = coalesce(excluded.stripe_charge_id, h.stripe_charge_id),
    stripe_checkout_session_id = coalesce(excluded.stripe_checkout_session_id, h.stripe_checkout_session_id),
    stripe_refund_id = coalesce(excluded.stripe_refund_id, h.stripe_refund_id),
    invoice_url = coalesce(excluded.invoice_url, h.invoice_url),
    invoice_pdf_url = coalesce(excluded.invoice_pdf_url, h.invoice_pdf_url),
    receipt_url = coalesce(excluded.receipt_url, h.receipt_url),
    period_start = coalesce(excluded.period_start, h.period_start),
    period_end = coalesce(excluded.period_end, h.period_end)
  returning h.id into v_id;
  return v_id;
end;
$$;

-- ============================================================================
-- Notifications: outbox keys per organization
-- ============================================================================

create or replace function private.enqueue_notification(p_organization_id uuid, p_type text, p_event_key text, p_data jsonb)
returns void
language sql
security definer
set search_path = ''
as $$
  insert into public.notifications (organization_id, type, event_key, payload)
  values (
    p_organization_id, p_type, p_event_key,
    jsonb_build_object(
      'type', p_type,
      'timestamp', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'data', jsonb_build_object('organization_id', p_organization_id) || coalesce(p_data, '{}')
    )
  )
  on conflict (organization_id, event_key) do nothing;
$$;

create or replace function private.notify_alert_raised()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_organization_name text;
begin
  perform private.enqueue_notification(new.organization_id, 'alert.raised', 'alert.raised:' || new.id,
    jsonb_build_object('alert_id', new.id, 'kind', new.kind, 'severity', new.severity,
      'title', new.title, 'message', new.message, 'data', new.data));

  if new.severity in ('warning', 'critical') then
    select o.name into v_organization_name from public.organizations o where o.id = new.organization_id;
    insert into public.notification_emails (organization_id, alert_id, user_id, recipient, content)
    select new.organization_id, new.id, m.user_id, u.email,
           jsonb_build_object('organization_id', new.organization_id, 'organization_name', v_organization_name,
             'alert_id', new.id, 'kind', new.kind, 'severity', new.severity,
             'title', new.title, 'message', new.message)
      from public.organization_members m
      join auth.users u on u.id = m.user_id
     where m.organization_id = new.organization_id
       and m.role <= 'admin'
       and u.email is not null and u.email <> ''
    on conflict (alert_id, organization_id, user_id) do nothing;
  end if;
  return null;
end;
$$;

create or replace function public.record_notification_attempt(p_channel text, p_id uuid, p_attempt integer, p_succeeded boolean, p_response_status integer DEFAULT NULL::integer, p_error text DEFAULT NULL::text, p_now timestamp with time zone DEFAULT now())
returns notification_status
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, now());
  v_attempts integer;
  v_status public.notification_status;
  v_delay interval := private.notification_retry_delay(p_attempt);
  v_error text := left(p_error, 2000);
  v_organization_id uuid;
begin
  perform private.require_service();
  if p_channel is null or p_channel not in ('webhook', 'email') then
    raise exception 'channel must be webhook or email' using errcode = '22023';
  end if;
  if p_attempt is null or p_attempt < 1 or p_succeeded is null then
    raise exception 'attempt (1 or more) and outcome are required' using errcode = '22023';
  end if;

  if p_channel = 'webhook' then
    select n.attempts, n.status, n.organization_id into v_attempts, v_status, v_organization_id
      from public.notifications n where n.id = p_id for update;
  else
    select e.attempts, e.status, e.organization_id into v_attempts, v_status, v_organization_id
      from public.notification_emails e where e.id = p_id for update;
  end if;
  if v_attempts is null then
    raise exception 'notification not found' using errcode = 'PT404';
  end if;

  insert into public.notification_attempts (organization_id, notification_id, email_id, attempt, attempted_at, succeeded, response_status, error)
  values (v_organization_id, case when p_channel = 'webhook' then p_id end, case when p_channel = 'email' then p_id end,
          p_attempt, v_now, p_succeeded, p_response_status, v_error);

  if v_status <> 'pending' or (not p_succeeded and p_attempt <> v_attempts) then
    return v_status;
  end if;
  v_status := case when p_succeeded then 'delivered' when v_delay is null then 'failed' else 'pending' end;

  if p_channel = 'webhook' then
    update public.notifications n
       set status = v_status, last_attempt_at = v_now, last_error = case when p_succeeded then null else v_error end,
           delivered_at = case when p_succeeded then v_now end,
           next_attempt_at = case when v_status = 'pending' then v_now + v_delay else n.next_attempt_at end
     where n.id = p_id and n.organization_id = v_organization_id;
  else
    update public.notification_emails e
       set status = v_status, last_attempt_at = v_now, last_error = case when p_succeeded then null else v_error end,
           delivered_at = case when p_succeeded then v_now end,
           next_attempt_at = case when v_status = 'pending' then v_now + v_delay else e.next_attempt_at end
     where e.id = p_id and e.organization_id = v_organization_id;
  end if;
  return v_status;
end;
$$;

