-- Alerts: what an organization's members should notice about its billing (credits running
-- low, a failed payment, a trial about to end, unusual usage, subscription changes). The
-- credit functions and the webhook raise them; members read and dismiss them.

-- ============================================================================
-- Types
-- ============================================================================

create type public.billing_alert_kind as enum (
  'low_balance', 'payment_failed', 'trial_ending', 'unusual_usage', 'subscription_changed'
);
create type public.billing_alert_severity as enum ('info', 'warning', 'critical');

-- ============================================================================
-- Tables
-- ============================================================================

create table public.billing_alerts (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  kind public.billing_alert_kind not null,
  severity public.billing_alert_severity not null,
  title text not null check (char_length(title) between 1 and 200),
  message text not null default '',
  data jsonb not null default '{}' check (jsonb_typeof(data) = 'object'),
  dedupe_key text,
  created_at timestamptz not null default now(),
  dismissed_at timestamptz,
  dismissed_by uuid references auth.users (id) on delete set null
);
alter table public.billing_alerts enable row level security;

comment on table public.billing_alerts is 'Alerts for an organization''s members. Raised by the billing functions, dismissed by members.';
comment on column public.billing_alerts.dedupe_key is
  'At most one open (undismissed) alert per key and organization, e.g. low_balance or the failed invoice id.';
comment on column public.billing_alerts.dismissed_at is 'When a member dismissed it; null while active. No default on purpose.';

-- ============================================================================
-- Indexes
-- ============================================================================

-- The Overview tab: active alerts, newest first.
create index billing_alerts_active_idx on public.billing_alerts (organization_id, created_at desc)
  where dismissed_at is null;
create unique index billing_alerts_open_dedupe_key on public.billing_alerts (organization_id, dedupe_key)
  where dedupe_key is not null and dismissed_at is null;
create index billing_alerts_dismissed_by_idx on public.billing_alerts (dismissed_by) where dismissed_by is not null;

-- ============================================================================
-- RLS policies and privileges
-- ============================================================================

create policy "Members can read their organization's alerts"
  on public.billing_alerts for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

revoke all on public.billing_alerts from anon;
revoke insert, update, delete, truncate on public.billing_alerts from authenticated;

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * Raises an alert unless an open one with the same dedupe key exists. Returns the alert id
 * (the existing one's when deduplicated).
 */
create function private.raise_alert(
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
  on conflict (organization_id, dedupe_key) where dedupe_key is not null and dismissed_at is null do nothing
  returning id into v_id;
  if v_id is null then
    select a.id into v_id from public.billing_alerts a
     where a.organization_id = p_organization_id and a.dedupe_key = p_dedupe_key and a.dismissed_at is null;
  end if;
  return v_id;
end;
$$;
revoke all on function private.raise_alert(uuid, public.billing_alert_kind, public.billing_alert_severity, text, text, jsonb, text) from public;

/**
 * Raises an alert for an organization (service role only: the webhook, scheduled jobs).
 * Kinds: low_balance, payment_failed, trial_ending, unusual_usage, subscription_changed.
 */
create function public.raise_billing_alert(
  p_organization_id uuid,
  p_kind text,
  p_severity text,
  p_title text,
  p_message text default '',
  p_data jsonb default '{}',
  p_dedupe_key text default null
) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  if p_kind is null or p_kind not in ('low_balance', 'payment_failed', 'trial_ending', 'unusual_usage', 'subscription_changed') then
    raise exception 'invalid alert kind %', coalesce(p_kind, 'null') using errcode = '22023';
  end if;
  if p_severity is null or p_severity not in ('info', 'warning', 'critical') then
    raise exception 'invalid alert severity %', coalesce(p_severity, 'null') using errcode = '22023';
  end if;
  if p_title is null or char_length(btrim(p_title)) not between 1 and 200 then
    raise exception 'alert title must be 1 to 200 characters' using errcode = '22023';
  end if;
  if p_data is null or jsonb_typeof(p_data) <> 'object' then
    raise exception 'alert data must be a JSON object' using errcode = '22023';
  end if;
  if not exists (select 1 from public.organizations o where o.id = p_organization_id) then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  return private.raise_alert(p_organization_id, p_kind::public.billing_alert_kind,
    p_severity::public.billing_alert_severity, btrim(p_title), p_message, p_data, p_dedupe_key);
end;
$$;
comment on function public.raise_billing_alert(uuid, text, text, text, text, jsonb, text) is
  'Service role: raises an alert (deduplicated by p_dedupe_key while one is open).';
revoke all on function public.raise_billing_alert(uuid, text, text, text, text, jsonb, text) from public, anon, authenticated;
grant execute on function public.raise_billing_alert(uuid, text, text, text, text, jsonb, text) to service_role;

/**
 * Dismisses an alert. Any member of the alert's organization; dismissing twice is harmless.
 */
create function public.dismiss_billing_alert(p_alert_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_organization_id uuid;
begin
  select a.organization_id into v_organization_id from public.billing_alerts a where a.id = p_alert_id;
  -- An unknown alert is refused like a foreign one, so ids do not leak.
  if v_organization_id is null then
    raise exception 'not allowed: no such alert in your organizations' using errcode = '42501';
  end if;
  perform private.require_organization_role(v_organization_id, 'member');
  update public.billing_alerts a
     set dismissed_at = now(), dismissed_by = auth.uid()
   where a.id = p_alert_id and a.dismissed_at is null;
end;
$$;
comment on function public.dismiss_billing_alert(uuid) is 'Dismisses one of your organization''s alerts (any member).';
revoke all on function public.dismiss_billing_alert(uuid) from public, anon;
grant execute on function public.dismiss_billing_alert(uuid) to authenticated, service_role;
