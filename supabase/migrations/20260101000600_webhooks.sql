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
 * when its status is "received".
 */
create function public.record_stripe_event(
  p_event_id text,
  p_type text,
  p_created_at timestamptz,
  p_livemode boolean,
  p_payload jsonb
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

  insert into public.stripe_events as e (id, type, stripe_created_at, livemode, payload)
  values (p_event_id, p_type, p_created_at, coalesce(p_livemode, false), p_payload)
  on conflict (id) do update set attempts = e.attempts + 1
  returning e.status, e.attempts into v_row;
  return jsonb_build_object('status', v_row.status, 'duplicate', v_row.attempts > 1, 'attempts', v_row.attempts);
end;
$$;
comment on function public.record_stripe_event(text, text, timestamptz, boolean, jsonb) is
  'Service role: persists a verified Stripe event by id (redeliveries only count). Apply it only while status is received.';
revoke all on function public.record_stripe_event(text, text, timestamptz, boolean, jsonb) from public, anon, authenticated;
grant execute on function public.record_stripe_event(text, text, timestamptz, boolean, jsonb) to service_role;

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
