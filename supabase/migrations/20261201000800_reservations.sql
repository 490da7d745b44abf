-- Reservations, spend limits and batches: the vocabulary and the tables (the functions are in
-- the next migration, because Postgres lets a new enum value be used only once the
-- transaction that added it has committed, and the CLI applies each migration file as one).
--
-- A reservation takes credits out of the organization's lots at once, in precedence order, as
-- `reservation` ledger rows, so nothing else can spend them and the ledger invariants (sum of
-- amounts = lots' remaining, running balance_after) hold throughout. Its ledger rows are also
-- its per-lot holdings: settling or releasing returns exactly those credits to the lots they
-- came from (`release` rows), and a settlement then consumes from them like any consumption.
--
-- A spend limit caps the credits an organization consumes per calendar month (UTC), live
-- reservations included. It is one column on the organization (read anyway under its lock,
-- so organizations without one pay nothing) and, while set, one counter row per month.

-- ============================================================================
-- Types
-- ============================================================================

alter type public.credit_transaction_kind add value if not exists 'reservation';
alter type public.credit_transaction_kind add value if not exists 'release';
alter type public.billing_alert_kind add value if not exists 'spend_limit';

create type public.credit_reservation_status as enum ('open', 'settled', 'released', 'expired');
comment on type public.credit_reservation_status is
  'open: holds its credits until settled, released or past expires_at (then it holds nothing, swept or not).';

-- ============================================================================
-- Tables
-- ============================================================================

create table public.credit_reservations (
  organization_id uuid not null references public.organizations (id) on delete restrict,
  id uuid not null default gen_random_uuid(),
  event_key text not null,
  quantity integer not null check (quantity > 0),
  unit_cost integer not null check (unit_cost > 0),
  credits integer not null check (credits > 0),
  precedence public.credit_precedence not null,
  ttl_seconds integer not null check (ttl_seconds between 1 and 86400),
  expires_at timestamptz not null,
  status public.credit_reservation_status not null default 'open',
  idempotency_key text,
  metadata jsonb not null default '{}',
  result jsonb not null,
  actor_id uuid,
  created_at timestamptz not null default now(),
  closed_at timestamptz,
  settled_quantity integer check (settled_quantity >= 0 and settled_quantity <= quantity),
  credits_consumed integer check (credits_consumed >= 0 and credits_consumed <= credits),
  consumption_id uuid,
  primary key (organization_id, id),
  constraint credit_reservations_closed check ((status = 'open') = (closed_at is null)),
  constraint credit_reservations_settled check ((status = 'settled') = (credits_consumed is not null))
);
alter table public.credit_reservations enable row level security;

comment on table public.credit_reservations is
  'Credits held for a usage event whose cost is known only when it finishes: reserve, then settle or release. Its credits are its reservation ledger rows.';
comment on column public.credit_reservations.unit_cost is 'The event''s credit cost when reserved; a settlement consumes unit_cost × its quantity.';
comment on column public.credit_reservations.credits is 'Credits held while open: unit_cost × quantity.';
comment on column public.credit_reservations.expires_at is
  'From this instant the reservation holds nothing, whether or not the sweep (expire_reservations) has written it down.';
comment on column public.credit_reservations.status is
  'open until settled, released or written down as expired. An open row past expires_at is expired already.';
comment on column public.credit_reservations.result is 'The reserve_credits result, returned again for the same idempotency key.';
comment on column public.credit_reservations.consumption_id is 'The settlement''s credit_consumptions row (null for a settlement of quantity 0).';
comment on column public.credit_reservations.actor_id is 'auth.uid() of the member who reserved; null for the service role.';

-- A reservation's ledger rows (reservation and release) carry its id; a settlement's
-- consumption carries it too. No foreign keys on purpose: these tables take every
-- consumption, and a foreign key queues a trigger per row even when the column is null.
-- Only the credit functions write either table.
alter table public.credit_transactions add column reservation_id uuid;
comment on column public.credit_transactions.reservation_id is
  'For reservation and release rows: the reservation whose credits moved. Per lot, -sum(amount) of its rows is what it still holds.';
alter table public.credit_consumptions add column reservation_id uuid;
comment on column public.credit_consumptions.reservation_id is 'Set when the consumption is the settlement of a reservation.';
alter table public.credit_consumptions add column batch_id uuid;
comment on column public.credit_consumptions.batch_id is
  'Set for events consumed through consume_credits_batch; the batch''s ledger rows carry it as their reference (one row per lot, not per event). Not indexed on purpose: every batch event would pay for it.';

alter table public.organizations add column monthly_spend_limit integer check (monthly_spend_limit >= 0);
comment on column public.organizations.monthly_spend_limit is
  'Credits the organization may consume per calendar month (UTC), live reservations included; null: no limit. Set with set_spend_limit.';

create table public.credit_spend_months (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  month_start date not null check (extract(day from month_start) = 1),
  consumed_credits bigint not null default 0 check (consumed_credits >= 0),
  limit_reached_at timestamptz,
  updated_at timestamptz not null default now(),
  primary key (organization_id, month_start)
);
alter table public.credit_spend_months enable row level security;

comment on table public.credit_spend_months is
  'Credits consumed per organization and UTC month, kept while the organization has a spend limit (counted from its consumptions when the limit is set), so the limit check is one row read.';
comment on column public.credit_spend_months.limit_reached_at is
  'When the month''s usage first reached the limit and the spend_limit alert was raised (once per month).';

-- ============================================================================
-- Indexes
-- ============================================================================

-- settle_reservation and release_reservation find a reservation by its id alone.
create index credit_reservations_id_idx on public.credit_reservations (id);
create unique index credit_reservations_idempotency_key_unique on public.credit_reservations (organization_id, idempotency_key)
  where idempotency_key is not null;
-- The organization's open reservations by expiry: live credits held, and those to write down.
create index credit_reservations_open_idx on public.credit_reservations (organization_id, expires_at) include (credits)
  where status = 'open';
-- The sweep, across organizations.
create index credit_reservations_open_expiry_idx on public.credit_reservations (expires_at) where status = 'open';
create index credit_transactions_reservation_id_idx on public.credit_transactions (reservation_id)
  where reservation_id is not null;
create index credit_consumptions_reservation_id_idx on public.credit_consumptions (reservation_id)
  where reservation_id is not null;

-- ============================================================================
-- RLS policies and privileges
-- ============================================================================

create policy "Members can read their organization's reservations"
  on public.credit_reservations for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

create policy "Members can read their organization's monthly spend"
  on public.credit_spend_months for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

revoke all on public.credit_reservations, public.credit_spend_months from anon;
revoke insert, update, delete, truncate on public.credit_reservations, public.credit_spend_months
  from authenticated, service_role;
