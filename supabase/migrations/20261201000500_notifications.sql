-- Notifications: what the product tells the outside world, written to an outbox in the same
-- transaction as the change that causes it (so a rolled-back change tells nobody) and
-- delivered afterwards by the `notifications` Edge Function, at least once, with retries.
--
--   * `notifications`: signed webhooks to the SaaS's own backend (BILLING_WEBHOOK_URL), one
--     row per event: alert.raised, subscription.updated, payment.succeeded, payment.failed,
--     auto_top_up.succeeded, auto_top_up.failed (the last two are reserved for auto top-up).
--   * `notification_emails`: one email per owner and admin for every warning or critical alert.
--   * `notification_attempts`: every delivery attempt of either, with its outcome.
--
-- Triggers on the tables that hold the change (billing_alerts, organization_subscriptions,
-- billing_history) write the outbox, so the rule lives in one place whichever function makes
-- the change. Nothing here is readable by members: the outbox is the platform's.

-- ============================================================================
-- Types
-- ============================================================================

create type public.notification_status as enum ('pending', 'delivered', 'failed');
comment on type public.notification_status is
  'pending: waiting for its next attempt; delivered: a 2xx (webhook) or accepted by SMTP (email); failed: every retry used up.';

-- ============================================================================
-- Tables
-- ============================================================================

create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  type text not null check (type in (
    'alert.raised', 'subscription.updated', 'payment.succeeded', 'payment.failed',
    'auto_top_up.succeeded', 'auto_top_up.failed'
  )),
  event_key text not null unique,
  payload jsonb not null check (jsonb_typeof(payload) = 'object'),
  status public.notification_status not null default 'pending',
  attempts integer not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz not null default now(),
  last_attempt_at timestamptz,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz not null default now()
);
alter table public.notifications enable row level security;

comment on table public.notifications is
  'Outbox of signed webhooks to BILLING_WEBHOOK_URL; written with the change that causes them, delivered by the notifications function.';
comment on column public.notifications.id is 'The Standard Webhooks `webhook-id`: the same on every attempt, so receivers can deduplicate.';
comment on column public.notifications.event_key is
  'What the notification is about (e.g. payment.succeeded:in_123); unique, so a replayed change notifies once.';
comment on column public.notifications.payload is 'The body POSTed: {"type", "timestamp", "data": {"organization_id", ...}}.';
comment on column public.notifications.next_attempt_at is
  'When the next attempt is due; while an attempt is under way, the end of its lease.';

create table public.notification_emails (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  alert_id uuid not null references public.billing_alerts (id) on delete cascade,
  user_id uuid references auth.users (id) on delete set null,
  recipient text not null check (char_length(recipient) between 3 and 320),
  content jsonb not null check (jsonb_typeof(content) = 'object'),
  status public.notification_status not null default 'pending',
  attempts integer not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz not null default now(),
  last_attempt_at timestamptz,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz not null default now(),
  unique (alert_id, user_id)
);
alter table public.notification_emails enable row level security;

comment on table public.notification_emails is
  'Outbox of alert emails: one row per owner or admin (at the time of the alert) for every warning or critical alert.';
comment on column public.notification_emails.recipient is 'The member''s email address when the alert was raised.';
comment on column public.notification_emails.content is
  'What the email says, as of the alert: organization_id, organization_name, alert_id, kind, severity, title, message.';

create table public.notification_attempts (
  id bigint generated always as identity primary key,
  notification_id uuid references public.notifications (id) on delete cascade,
  email_id uuid references public.notification_emails (id) on delete cascade,
  attempt integer not null check (attempt >= 1),
  attempted_at timestamptz not null,
  succeeded boolean not null,
  response_status integer,
  error text,
  check (num_nonnulls(notification_id, email_id) = 1)
);
alter table public.notification_attempts enable row level security;

comment on table public.notification_attempts is 'Every delivery attempt of a webhook notification or an email, with its outcome.';
comment on column public.notification_attempts.response_status is 'The receiver''s HTTP status (webhooks); null when none was received.';

-- ============================================================================
-- Indexes
-- ============================================================================

-- The deliverer's claim: due pending rows, oldest first.
create index notifications_due_idx on public.notifications (next_attempt_at) where status = 'pending';
create index notifications_organization_idx on public.notifications (organization_id, created_at desc);
create index notification_emails_due_idx on public.notification_emails (next_attempt_at) where status = 'pending';
create index notification_emails_organization_idx on public.notification_emails (organization_id);
create index notification_emails_user_idx on public.notification_emails (user_id) where user_id is not null;
create index notification_attempts_notification_idx on public.notification_attempts (notification_id) where notification_id is not null;
create index notification_attempts_email_idx on public.notification_attempts (email_id) where email_id is not null;

-- ============================================================================
-- RLS policies and privileges: the service role only (it bypasses RLS); no policy for members.
-- ============================================================================

revoke all on public.notifications, public.notification_emails, public.notification_attempts from anon, authenticated;

-- ============================================================================
-- Functions: writing the outbox
-- ============================================================================

/**
 * The wait before the next attempt after failed attempt number p_attempt, or null when it was
 * the last: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 12 h (about 27.7 hours in
 * all, so a receiver that is down for a day loses nothing), then the row is marked failed.
 */
create function private.notification_retry_delay(p_attempt integer) returns interval
language sql
immutable
set search_path = ''
as $$
  select (array[
    interval '5 seconds', interval '30 seconds', interval '2 minutes', interval '10 minutes',
    interval '30 minutes', interval '1 hour', interval '2 hours', interval '4 hours',
    interval '8 hours', interval '12 hours'
  ])[p_attempt];
$$;
revoke all on function private.notification_retry_delay(integer) from public;

/**
 * Writes one webhook notification into the outbox, in the caller's transaction. The body is
 * the contract's {"type", "timestamp", "data": {"organization_id", ...}}. A second call with
 * the same key writes nothing, so a replayed change notifies once.
 */
create function private.enqueue_notification(
  p_organization_id uuid,
  p_type text,
  p_event_key text,
  p_data jsonb
) returns void
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
  on conflict (event_key) do nothing;
$$;
revoke all on function private.enqueue_notification(uuid, text, text, jsonb) from public;

/**
 * Trigger (after insert on billing_alerts): every alert raised becomes an `alert.raised`
 * notification, and a warning or critical one an email to each owner and admin of the
 * organization at this moment (members get none).
 */
create function private.notify_alert_raised() returns trigger
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
    on conflict (alert_id, user_id) do nothing;
  end if;
  return null;
end;
$$;
revoke all on function private.notify_alert_raised() from public;

create trigger notify_alert_raised
  after insert on public.billing_alerts
  for each row execute function private.notify_alert_raised();

/**
 * Trigger (after a subscription row is created or its status changes): a
 * `subscription.updated` notification. A redelivered webhook that leaves the status as it was
 * changes nothing and notifies nobody.
 */
create function private.notify_subscription_updated() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_previous text := case when tg_op = 'UPDATE' then old.status::text end;
begin
  perform private.enqueue_notification(new.organization_id, 'subscription.updated',
    -- One notification per status change: the transaction id tells two changes to the same
    -- status apart (active -> past_due -> active -> past_due).
    'subscription.updated:' || new.id || ':' || new.status || ':' || pg_catalog.pg_current_xact_id()::text,
    jsonb_build_object('subscription_id', new.id, 'stripe_subscription_id', new.stripe_subscription_id,
      'status', new.status, 'previous_status', v_previous, 'plan_id', new.plan_id,
      'billing_interval', new.billing_interval, 'current_period_end', new.current_period_end,
      'cancel_at_period_end', new.cancel_at_period_end));
  return null;
end;
$$;
revoke all on function private.notify_subscription_updated() from public;

create trigger notify_subscription_created
  after insert on public.organization_subscriptions
  for each row execute function private.notify_subscription_updated();
create trigger notify_subscription_status_changed
  after update of status on public.organization_subscriptions
  for each row when (old.status is distinct from new.status)
  execute function private.notify_subscription_updated();

/**
 * Trigger (after a billing history row is written or its status moves): a payment (invoice
 * or credit purchase, not a refund) reaching `paid` or `failed` becomes `payment.succeeded`
 * or `payment.failed`, keyed by the Stripe object and status, so each payment notifies once
 * per outcome however often Stripe redelivers the event.
 */
create function private.notify_payment() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_type text := case new.status when 'paid' then 'payment.succeeded' else 'payment.failed' end;
begin
  perform private.enqueue_notification(new.organization_id, v_type, v_type || ':' || new.stripe_reference,
    jsonb_build_object('billing_history_id', new.id, 'kind', new.kind, 'status', new.status,
      'amount', new.amount, 'currency', new.currency, 'description', new.description,
      'stripe_reference', new.stripe_reference, 'stripe_invoice_id', new.stripe_invoice_id,
      'stripe_payment_intent_id', new.stripe_payment_intent_id,
      'stripe_checkout_session_id', new.stripe_checkout_session_id,
      'invoice_url', new.invoice_url, 'occurred_at', new.occurred_at));
  return null;
end;
$$;
revoke all on function private.notify_payment() from public;

create trigger notify_payment_recorded
  after insert on public.billing_history
  for each row when (new.kind <> 'refund' and new.status in ('paid', 'failed'))
  execute function private.notify_payment();
create trigger notify_payment_status_changed
  after update of status on public.billing_history
  for each row when (new.kind <> 'refund' and new.status in ('paid', 'failed') and old.status is distinct from new.status)
  execute function private.notify_payment();

-- ============================================================================
-- Functions: delivering (the notifications Edge Function, with the service role key)
-- ============================================================================

/**
 * Claims up to p_limit due webhook notifications for one delivery attempt each. Rows are
 * picked `for update skip locked` and leased for two minutes (next_attempt_at moves past the
 * lease), so concurrent deliverers never send one row at the same time; a deliverer that dies
 * mid-attempt leaves the row to be claimed again when the lease ends (at least once).
 * p_now is the delivery clock (tests move it instead of waiting).
 */
create function public.claim_notifications(p_limit integer default 50, p_now timestamptz default now())
returns table (notification_id uuid, attempt integer, payload jsonb)
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  if p_limit is null or p_limit not between 1 and 500 then
    raise exception 'limit must be between 1 and 500' using errcode = '22023';
  end if;
  return query
  with due as (
    select n.id
      from public.notifications n
     where n.status = 'pending' and n.next_attempt_at <= coalesce(p_now, now())
     order by n.next_attempt_at, n.created_at
     limit p_limit
       for update skip locked
  )
  update public.notifications n
     set attempts = n.attempts + 1,
         next_attempt_at = coalesce(p_now, now()) + interval '2 minutes'
    from due
   where n.id = due.id
  returning n.id, n.attempts, n.payload;
end;
$$;
comment on function public.claim_notifications(integer, timestamptz) is
  'Service role: claims due webhook notifications (skip locked, leased for two minutes); returns id, attempt number, body.';
revoke all on function public.claim_notifications(integer, timestamptz) from public, anon, authenticated;
grant execute on function public.claim_notifications(integer, timestamptz) to service_role;

/** As claim_notifications, for alert emails; returns what the email needs. */
create function public.claim_notification_emails(p_limit integer default 50, p_now timestamptz default now())
returns table (email_id uuid, attempt integer, recipient text, content jsonb)
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  if p_limit is null or p_limit not between 1 and 500 then
    raise exception 'limit must be between 1 and 500' using errcode = '22023';
  end if;
  return query
  with due as (
    select e.id
      from public.notification_emails e
     where e.status = 'pending' and e.next_attempt_at <= coalesce(p_now, now())
     order by e.next_attempt_at, e.created_at
     limit p_limit
       for update skip locked
  )
  update public.notification_emails e
     set attempts = e.attempts + 1,
         next_attempt_at = coalesce(p_now, now()) + interval '2 minutes'
    from due
   where e.id = due.id
  returning e.id, e.attempts, e.recipient, e.content;
end;
$$;
comment on function public.claim_notification_emails(integer, timestamptz) is
  'Service role: claims due alert emails (skip locked, leased for two minutes); returns id, attempt number, recipient, content.';
revoke all on function public.claim_notification_emails(integer, timestamptz) from public, anon, authenticated;
grant execute on function public.claim_notification_emails(integer, timestamptz) to service_role;

/**
 * Records the outcome of one attempt at a webhook notification (p_channel 'webhook') or an
 * email ('email') and decides what comes next: delivered on success; otherwise the next
 * attempt after the backoff of private.notification_retry_delay, or failed when none is left.
 * An outcome for an attempt that is no longer the latest (its lease ran out and another
 * deliverer took the row) is recorded but reschedules nothing. Returns the row's status.
 */
create function public.record_notification_attempt(
  p_channel text,
  p_id uuid,
  p_attempt integer,
  p_succeeded boolean,
  p_response_status integer default null,
  p_error text default null,
  p_now timestamptz default now()
) returns public.notification_status
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
begin
  perform private.require_service();
  if p_channel is null or p_channel not in ('webhook', 'email') then
    raise exception 'channel must be webhook or email' using errcode = '22023';
  end if;
  if p_attempt is null or p_attempt < 1 or p_succeeded is null then
    raise exception 'attempt (1 or more) and outcome are required' using errcode = '22023';
  end if;

  if p_channel = 'webhook' then
    select n.attempts, n.status into v_attempts, v_status from public.notifications n where n.id = p_id for update;
  else
    select e.attempts, e.status into v_attempts, v_status from public.notification_emails e where e.id = p_id for update;
  end if;
  if v_attempts is null then
    raise exception 'notification not found' using errcode = 'PT404';
  end if;

  insert into public.notification_attempts (notification_id, email_id, attempt, attempted_at, succeeded, response_status, error)
  values (case when p_channel = 'webhook' then p_id end, case when p_channel = 'email' then p_id end,
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
     where n.id = p_id;
  else
    update public.notification_emails e
       set status = v_status, last_attempt_at = v_now, last_error = case when p_succeeded then null else v_error end,
           delivered_at = case when p_succeeded then v_now end,
           next_attempt_at = case when v_status = 'pending' then v_now + v_delay else e.next_attempt_at end
     where e.id = p_id;
  end if;
  return v_status;
end;
$$;
comment on function public.record_notification_attempt(text, uuid, integer, boolean, integer, text, timestamptz) is
  'Service role: records one delivery attempt (channel webhook or email) and schedules the retry (5 s ... 12 h) or marks it delivered / failed.';
revoke all on function public.record_notification_attempt(text, uuid, integer, boolean, integer, text, timestamptz) from public, anon, authenticated;
grant execute on function public.record_notification_attempt(text, uuid, integer, boolean, integer, text, timestamptz) to service_role;
