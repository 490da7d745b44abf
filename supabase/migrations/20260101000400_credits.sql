-- Credits: prepaid credits that usage consumes.
--
-- Spendable credit lives in lots (one per grant: a credit pack, a period's subscription
-- allowance, a manual grant). Every movement of credit into or out of a lot is a row of the
-- append-only ledger `credit_transactions`, written by the one helper that also changes the
-- lot, so the ledger and the lots cannot disagree: per organization, the sum of the ledger's
-- amounts always equals the sum of the lots' remaining credit.
--
-- Every writer takes the same per-organization lock (the organization's row, `for no key
-- update`) before touching lots, so consumption, grants, expiry and refunds for one
-- organization are serialized while different organizations never wait for each other.
-- Expiry is lazy as well as swept: each writer first expires the organization's lots whose
-- time has passed, and reads never count expired credit, whether or not a sweep has run.

-- ============================================================================
-- Types
-- ============================================================================

create type public.credit_source as enum ('purchased', 'subscription');
comment on type public.credit_source is
  'purchased: bought as a pack, never expires. subscription: allocated per billing period, expires at its end.';

create type public.credit_transaction_kind as enum ('grant', 'consumption', 'expiry', 'refund', 'adjustment');

-- ============================================================================
-- Tables
-- ============================================================================

create table public.credit_lots (
  id bigint generated always as identity primary key,
  organization_id uuid not null references public.organizations (id) on delete restrict,
  source public.credit_source not null,
  granted integer not null check (granted > 0),
  remaining integer not null check (remaining >= 0 and remaining <= granted),
  expires_at timestamptz,
  reference text,
  subscription_id uuid references public.organization_subscriptions (id) on delete set null,
  period_start timestamptz,
  period_end timestamptz,
  created_at timestamptz not null default now(),
  constraint credit_lots_purchased_never_expire check (source <> 'purchased' or expires_at is null),
  constraint credit_lots_subscription_expires check (source <> 'subscription' or expires_at is not null),
  constraint credit_lots_reference_unique unique (organization_id, reference)
);
alter table public.credit_lots enable row level security;

comment on table public.credit_lots is
  'Spendable credit, one lot per grant. Changed only by the credit functions, always together with a ledger row.';
comment on column public.credit_lots.remaining is 'Credits left in the lot; never below zero nor above granted.';
comment on column public.credit_lots.expires_at is
  'Subscription lots: end of the billing period. Purchased lots: null (never expire). Not spendable from this instant on.';
comment on column public.credit_lots.reference is
  'Business key of the grant (Stripe invoice id, checkout session id, or the caller''s reference); one grant per key.';
comment on column public.credit_lots.period_start is 'Start of the billing period a subscription allocation belongs to.';
comment on column public.credit_lots.period_end is
  'End of that billing period as the invoice gave it. expires_at starts equal to it and only ever moves earlier, when a later period begins sooner.';

create table public.credit_consumptions (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete restrict,
  -- No foreign key to credit_events on purpose: its key-share lock on the (hot) event row
  -- would serialize concurrent consumers. Events are deactivated, never deleted.
  event_key text not null,
  quantity integer not null check (quantity > 0),
  credits integer not null check (credits > 0),
  purchased_used integer not null check (purchased_used >= 0),
  subscription_used integer not null check (subscription_used >= 0),
  precedence public.credit_precedence not null,
  idempotency_key text,
  metadata jsonb not null default '{}',
  result jsonb not null,
  actor_id uuid,
  created_at timestamptz not null default now(),
  constraint credit_consumptions_split check (purchased_used + subscription_used = credits)
);
alter table public.credit_consumptions enable row level security;

comment on table public.credit_consumptions is
  'One row per successful consume_credits call: the usage event, and the idempotency record. Append-only.';
comment on column public.credit_consumptions.id is 'The transaction_id returned by consume_credits; its ledger rows carry it as consumption_id.';
comment on column public.credit_consumptions.result is 'The result returned to the caller, replayed for a retry with the same idempotency key.';
comment on column public.credit_consumptions.precedence is 'The organization''s precedence policy when the credits were consumed (for audit).';
comment on column public.credit_consumptions.actor_id is 'auth.uid() of the member who consumed; null for the service role.';

create table public.credit_transactions (
  id bigint generated always as identity primary key,
  organization_id uuid not null references public.organizations (id) on delete restrict,
  kind public.credit_transaction_kind not null,
  source public.credit_source not null,
  amount integer not null,
  balance_after integer not null check (balance_after >= 0),
  lot_id bigint not null references public.credit_lots (id) on delete restrict,
  consumption_id uuid references public.credit_consumptions (id) on delete restrict,
  event_key text,
  reference text,
  description text not null default '',
  actor_id uuid,
  created_at timestamptz not null default now(),
  constraint credit_transactions_amount_sign check (
    case kind
      when 'grant' then amount > 0
      when 'adjustment' then amount <> 0
      else amount < 0
    end
  )
);
alter table public.credit_transactions enable row level security;

comment on table public.credit_transactions is
  'The append-only credit ledger: every grant, consumption, expiry, refund claw-back and adjustment. Never updated or deleted; a correction is a new row.';
comment on column public.credit_transactions.amount is 'Signed credits: positive for grants, negative for consumption, expiry and claw-back.';
comment on column public.credit_transactions.balance_after is
  'The organization''s total credits (all sources) right after this movement.';
comment on column public.credit_transactions.consumption_id is 'For consumption rows: the consume_credits transaction_id.';
comment on column public.credit_transactions.reference is 'Business key: grant reference, invoice id, refund id.';

create table public.credit_clawbacks (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete restrict,
  refund_id text not null,
  purchase_reference text,
  requested integer not null check (requested > 0),
  clawed_back integer not null check (clawed_back between 0 and requested),
  shortfall integer generated always as (requested - clawed_back) stored,
  created_at timestamptz not null default now(),
  constraint credit_clawbacks_refund_unique unique (organization_id, refund_id)
);
alter table public.credit_clawbacks enable row level security;

comment on table public.credit_clawbacks is
  'One row per refunded purchase: the credits the refund should remove, what could be removed, and what had already been spent (shortfall). Append-only.';

-- ============================================================================
-- Indexes
-- ============================================================================

-- consume_credits: the organization's spendable lots. Exhausted lots drop out of the index.
create index credit_lots_spendable_idx on public.credit_lots (organization_id, source, expires_at)
  where remaining > 0;
-- expire_credits: lots whose time is up, across organizations.
create index credit_lots_expiry_idx on public.credit_lots (expires_at) where remaining > 0 and expires_at is not null;
create index credit_lots_subscription_id_idx on public.credit_lots (subscription_id) where subscription_id is not null;

-- The Credits tab: the ledger newest first, optionally by kind.
create index credit_transactions_organization_id_idx on public.credit_transactions (organization_id, created_at desc, id desc);
create index credit_transactions_organization_kind_idx on public.credit_transactions (organization_id, kind, created_at desc, id desc);
create index credit_transactions_lot_id_idx on public.credit_transactions (lot_id);
create index credit_transactions_consumption_id_idx on public.credit_transactions (consumption_id) where consumption_id is not null;

-- Usage over the last 30 days by event.
create index credit_consumptions_organization_created_idx on public.credit_consumptions (organization_id, created_at desc)
  include (event_key, credits);
-- The idempotency record: one consumption per (organization, key). Calls without a key add no entry.
create unique index credit_consumptions_idempotency_key_unique on public.credit_consumptions (organization_id, idempotency_key)
  where idempotency_key is not null;

-- ============================================================================
-- Append-only guard
-- ============================================================================

/**
 * The ledger and the records beside it are history: nobody, the service role and the
 * table owner included, may rewrite it. Corrections are new rows.
 */
create function private.forbid_rewrite() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception '%.% is append-only: rows are never updated or deleted', tg_table_schema, tg_table_name
    using errcode = '42501', hint = 'Record a correction as a new row.';
end;
$$;
revoke all on function private.forbid_rewrite() from public;

create trigger credit_transactions_append_only before update or delete on public.credit_transactions
  for each row execute function private.forbid_rewrite();
create trigger credit_transactions_no_truncate before truncate on public.credit_transactions
  for each statement execute function private.forbid_rewrite();
create trigger credit_consumptions_append_only before update or delete on public.credit_consumptions
  for each row execute function private.forbid_rewrite();
create trigger credit_consumptions_no_truncate before truncate on public.credit_consumptions
  for each statement execute function private.forbid_rewrite();
create trigger credit_clawbacks_append_only before update or delete on public.credit_clawbacks
  for each row execute function private.forbid_rewrite();
create trigger credit_clawbacks_no_truncate before truncate on public.credit_clawbacks
  for each statement execute function private.forbid_rewrite();

-- ============================================================================
-- RLS policies and privileges
-- ============================================================================

create policy "Members can read their organization's credit lots"
  on public.credit_lots for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

create policy "Members can read their organization's consumptions"
  on public.credit_consumptions for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

create policy "Members can read their organization's transactions"
  on public.credit_transactions for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

create policy "Members can read their organization's refund claw-backs"
  on public.credit_clawbacks for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

-- Credit state changes only through the functions below (which run as their owner), so
-- even the service role cannot write a lot without its ledger row or rewrite the ledger.
revoke all on public.credit_lots, public.credit_consumptions, public.credit_transactions,
  public.credit_clawbacks from anon;
revoke insert, update, delete, truncate on public.credit_lots, public.credit_consumptions,
  public.credit_transactions, public.credit_clawbacks from authenticated, service_role;

-- ============================================================================
-- Internal functions
-- ============================================================================

/**
 * Takes the organization's billing lock (its row, `for no key update`, which foreign-key
 * checks from the billing tables do not conflict with) and returns its precedence policy.
 * Every function that changes credit calls this first; PT404 if there is no such organization.
 */
create function private.lock_organization(p_organization_id uuid) returns public.credit_precedence
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_precedence public.credit_precedence;
begin
  select o.credit_precedence into v_precedence
    from public.organizations o
   where o.id = p_organization_id
     for no key update;
  if not found then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  return v_precedence;
end;
$$;
revoke all on function private.lock_organization(uuid) from public;

/**
 * Moves credit into (positive) or out of (negative) one lot and appends the ledger row that
 * records it, with the organization's total balance after the move. The only code that
 * changes a lot's remaining credit. The caller holds the organization's lock.
 */
create function private.move_credits(
  p_lot_id bigint,
  p_amount integer,
  p_kind public.credit_transaction_kind,
  p_consumption_id uuid default null,
  p_event_key text default null,
  p_reference text default null,
  p_description text default ''
) returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_organization_id uuid;
  v_source public.credit_source;
  v_balance_after integer;
  v_threshold integer;
  v_transaction_id bigint;
begin
  update public.credit_lots l
     set remaining = l.remaining + p_amount
   where l.id = p_lot_id
  returning l.organization_id, l.source into v_organization_id, v_source;

  select coalesce(sum(l.remaining), 0) into v_balance_after
    from public.credit_lots l
   where l.organization_id = v_organization_id and l.remaining > 0;

  insert into public.credit_transactions (
    organization_id, kind, source, amount, balance_after, lot_id, consumption_id,
    event_key, reference, description, actor_id
  ) values (
    v_organization_id, p_kind, v_source, p_amount, v_balance_after,
    p_lot_id, p_consumption_id, p_event_key, p_reference, coalesce(p_description, ''),
    -- Expiry happens to an organization; it is not the action of whoever triggered the sweep.
    case when p_kind = 'expiry' then null else auth.uid() end
  )
  returning id into v_transaction_id;

  -- One alert per crossing below the organization's threshold, whatever moved the balance
  -- (consumption, expiry or a refund), and at most one open at a time.
  if p_amount < 0 then
    select o.low_balance_threshold into v_threshold from public.organizations o where o.id = v_organization_id;
    if v_balance_after < v_threshold and v_balance_after - p_amount >= v_threshold then
      perform private.raise_alert(v_organization_id, 'low_balance', 'warning', 'Credit balance is low',
        pg_catalog.format('The balance fell to %s credits, below the threshold of %s.', v_balance_after, v_threshold),
        jsonb_build_object('balance', v_balance_after, 'threshold', v_threshold), 'low_balance');
    end if;
  end if;
  return v_transaction_id;
end;
$$;
revoke all on function private.move_credits(bigint, integer, public.credit_transaction_kind, uuid, text, text, text) from public;

/**
 * Writes the expiry rows for the organization's lots whose expiry has passed (now() is at
 * or after expires_at) and empties them. The caller holds the organization's lock.
 * Returns how many lots expired.
 */
create function private.expire_organization_lots(p_organization_id uuid) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lot record;
  v_count integer := 0;
begin
  for v_lot in
    select l.id, l.remaining
      from public.credit_lots l
     where l.organization_id = p_organization_id
       and l.remaining > 0
       and l.expires_at <= now()
     order by l.expires_at, l.id
       for update
  loop
    perform private.move_credits(v_lot.id, -v_lot.remaining, 'expiry', p_description => 'credits expired');
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
revoke all on function private.expire_organization_lots(uuid) from public;

/**
 * True while the organization's subscription credits are on hold: its subscription is
 * unpaid, or past due beyond the grace period. Purchased credits are never held; the hold
 * ends when the invoice is paid (the webhook clears the past-due state).
 */
create function private.subscription_credits_held(p_organization_id uuid) returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return exists (
    select 1 from public.organization_subscriptions s
     where s.organization_id = p_organization_id
       and (s.status = 'unpaid' or (s.status = 'past_due' and s.grace_period_end <= now()))
  );
end;
$$;
revoke all on function private.subscription_credits_held(uuid) from public;

/**
 * The organization's spendable credit right now: expired lots never count, swept or not,
 * and subscription credits on hold (past due beyond the grace period) do not either.
 */
create function private.credit_balance(p_organization_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  with held as (
    select private.subscription_credits_held(p_organization_id) as held
  ), spendable as (
    select l.source, l.remaining, l.expires_at
      from public.credit_lots l
     where l.organization_id = p_organization_id
       and l.remaining > 0
       and (l.expires_at is null or l.expires_at > now())
       and not (l.source = 'subscription' and (select h.held from held h))
  ), next_expiry as (
    select min(s.expires_at) as at from spendable s
  )
  select jsonb_build_object(
    'total', coalesce(sum(s.remaining), 0)::integer,
    'purchased', coalesce(sum(s.remaining) filter (where s.source = 'purchased'), 0)::integer,
    'subscription', coalesce(sum(s.remaining) filter (where s.source = 'subscription'), 0)::integer,
    'next_expiry_at', (select n.at from next_expiry n),
    'expiring_amount', coalesce(sum(s.remaining) filter (where s.expires_at = (select n.at from next_expiry n)), 0)::integer
  )
  from spendable s;
$$;
revoke all on function private.credit_balance(uuid) from public;

/**
 * Validates a business key (grant reference, Stripe id): 1 to 255 characters, no control
 * characters, not blank. Null passes (no key given).
 */
create function private.require_valid_key(p_key text, p_what text) returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_key is not null and (char_length(p_key) not between 1 and 255 or p_key ~ '[[:cntrl:]]' or btrim(p_key) = '') then
    raise exception '% must be 1 to 255 characters without control characters', p_what using errcode = '22023';
  end if;
end;
$$;
revoke all on function private.require_valid_key(text, text) from public;

/**
 * Creates a lot and its grant ledger row. The caller holds the organization's lock and has
 * checked the reference is new. Returns the lot id.
 */
create function private.grant_lot(
  p_organization_id uuid,
  p_amount integer,
  p_source public.credit_source,
  p_expires_at timestamptz,
  p_reference text,
  p_description text,
  p_subscription_id uuid default null,
  p_period_start timestamptz default null,
  p_period_end timestamptz default null
) returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lot_id bigint;
begin
  insert into public.credit_lots (organization_id, source, granted, remaining, expires_at, reference, subscription_id,
    period_start, period_end)
  values (p_organization_id, p_source, p_amount, 0, p_expires_at, p_reference, p_subscription_id,
    p_period_start, p_period_end)
  returning id into v_lot_id;
  perform private.move_credits(v_lot_id, p_amount, 'grant', p_reference => p_reference, p_description => p_description);
  return v_lot_id;
end;
$$;
revoke all on function private.grant_lot(uuid, integer, public.credit_source, timestamptz, text, text, uuid, timestamptz, timestamptz) from public;

/**
 * Result of a grant, first time or replayed: the lot, its grant ledger row, the balance.
 */
create function private.grant_result(p_lot_id bigint, p_replay boolean) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'lot_id', l.id,
    'transaction_id', (select t.id from public.credit_transactions t where t.lot_id = l.id and t.kind = 'grant'),
    'granted', l.granted,
    'source', l.source,
    'expires_at', l.expires_at,
    'balance', private.credit_balance(l.organization_id),
    'idempotent_replay', p_replay
  )
  from public.credit_lots l
  where l.id = p_lot_id;
$$;
revoke all on function private.grant_result(bigint, boolean) from public;

-- ============================================================================
-- API functions
-- ============================================================================

/**
 * Spends credits for a usage event: cost × quantity, all or nothing, in the organization's
 * precedence order (purchased first by default; expiring first if the organization chose
 * it), never from an expired lot. The same idempotency key returns the first result again.
 *
 * Callable by the service role for any organization and by members for their own.
 * SQLSTATEs: PT402 not enough credits, 42501 not allowed, PT404 unknown or inactive event,
 * 22023 bad quantity / idempotency key / metadata, PT409 key reused with other parameters.
 */
create function public.consume_credits(
  p_organization_id uuid,
  p_event_key text,
  p_quantity integer default 1,
  p_idempotency_key text default null,
  p_metadata jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
-- A stuck lock becomes a quick, retriable error (55P03) instead of a hung request.
set lock_timeout = '5s'
as $$
declare
  v_metadata jsonb := coalesce(p_metadata, '{}'::jsonb);
  v_event record;
  v_cost bigint;
  v_needed integer;
  v_precedence public.credit_precedence;
  v_prior record;
  v_lot record;
  v_take integer;
  v_lot_ids bigint[] := '{}';
  v_takes integer[] := '{}';
  v_purchased_before integer := 0;
  v_subscription_before integer := 0;
  v_purchased_used integer := 0;
  v_subscription_used integer := 0;
  v_consumption_id uuid := gen_random_uuid();
  v_held boolean;
  v_result jsonb;
begin
  -- Input first: a bad call fails before it takes any lock.
  if p_organization_id is null then
    raise exception 'organization id is required' using errcode = '22023';
  end if;
  if p_quantity is null or p_quantity <= 0 then
    raise exception 'quantity must be a positive integer' using errcode = '22023';
  end if;
  perform private.require_valid_key(p_idempotency_key, 'idempotency key');
  if jsonb_typeof(v_metadata) <> 'object' or octet_length(v_metadata::text) > 16384 then
    raise exception 'metadata must be a JSON object of at most 16 KB' using errcode = '22023';
  end if;

  perform private.require_organization_role(p_organization_id, 'member');

  -- Looked up before the lock to keep the lock short; judged after the replay check, so a
  -- retry still gets its first result after the event was deactivated.
  select e.event_key, e.credit_cost into v_event
    from public.credit_events e
   where e.event_key = p_event_key and e.is_active;

  v_precedence := private.lock_organization(p_organization_id);

  -- Under the lock, a retry with the same key sees the first call's committed record.
  if p_idempotency_key is not null then
    select c.event_key, c.quantity, c.metadata, c.result into v_prior
      from public.credit_consumptions c
     where c.organization_id = p_organization_id and c.idempotency_key = p_idempotency_key;
    if found then
      if v_prior.event_key = p_event_key and v_prior.quantity = p_quantity and v_prior.metadata = v_metadata then
        return v_prior.result || jsonb_build_object('idempotent_replay', true);
      end if;
      raise exception 'idempotency key % was already used with different parameters', p_idempotency_key
        using errcode = 'PT409';
    end if;
  end if;

  if v_event.event_key is null then
    raise exception 'unknown or inactive event key: %', coalesce(p_event_key, 'null') using errcode = 'PT404';
  end if;
  v_cost := v_event.credit_cost::bigint * p_quantity;
  if v_cost > 2147483647 then
    raise exception 'quantity too large: % credits exceeds the largest single consumption', v_cost using errcode = '22023';
  end if;

  v_held := private.subscription_credits_held(p_organization_id);

  -- One pass over the organization's lots in precedence order: lots whose expiry has passed
  -- are expired (written now, so the ledger stays current), held subscription credit is
  -- passed over, the rest is spent from.
  v_needed := v_cost;
  for v_lot in
    select l.id, l.source, l.remaining, l.expires_at <= now() as expired
      from public.credit_lots l
     where l.organization_id = p_organization_id
       and l.remaining > 0
     order by
       case when v_precedence = 'purchased_first' then l.source <> 'purchased' else l.expires_at is null end,
       l.expires_at nulls last,
       l.id
       for update
  loop
    if v_lot.expired then
      perform private.move_credits(v_lot.id, -v_lot.remaining, 'expiry', p_description => 'credits expired');
      continue;
    end if;
    if v_held and v_lot.source = 'subscription' then
      continue;
    end if;
    if v_lot.source = 'purchased' then
      v_purchased_before := v_purchased_before + v_lot.remaining;
    else
      v_subscription_before := v_subscription_before + v_lot.remaining;
    end if;
    if v_needed > 0 then
      v_take := least(v_needed, v_lot.remaining);
      v_needed := v_needed - v_take;
      v_lot_ids := v_lot_ids || v_lot.id;
      v_takes := v_takes || v_take;
      if v_lot.source = 'purchased' then
        v_purchased_used := v_purchased_used + v_take;
      else
        v_subscription_used := v_subscription_used + v_take;
      end if;
    end if;
  end loop;

  if v_needed > 0 then
    raise exception 'insufficient credits: % required, % available%', v_cost, v_purchased_before + v_subscription_before,
      case when v_held then ' (subscription credits are on hold until the past-due invoice is paid)' else '' end
      using errcode = 'PT402';
  end if;

  v_result := jsonb_build_object(
    'transaction_id', v_consumption_id,
    'credits_consumed', v_cost,
    'purchased_used', v_purchased_used,
    'subscription_used', v_subscription_used,
    'balance', jsonb_build_object(
      'total', v_purchased_before + v_subscription_before - v_cost,
      'purchased', v_purchased_before - v_purchased_used,
      'subscription', v_subscription_before - v_subscription_used
    ),
    'idempotent_replay', false
  );

  insert into public.credit_consumptions (
    id, organization_id, event_key, quantity, credits, purchased_used, subscription_used,
    precedence, idempotency_key, metadata, result, actor_id
  ) values (
    v_consumption_id, p_organization_id, v_event.event_key, p_quantity, v_cost,
    v_purchased_used, v_subscription_used, v_precedence, p_idempotency_key, v_metadata, v_result, auth.uid()
  );

  for i in 1 .. coalesce(array_length(v_lot_ids, 1), 0) loop
    perform private.move_credits(v_lot_ids[i], -v_takes[i], 'consumption', v_consumption_id, v_event.event_key);
  end loop;

  return v_result;
end;
$$;
comment on function public.consume_credits(uuid, text, integer, text, jsonb) is
  'Spends cost × quantity credits for a usage event, all or nothing, in precedence order; idempotent per key. Errors: PT402, 42501, PT404, 22023, PT409.';
revoke all on function public.consume_credits(uuid, text, integer, text, jsonb) from public, anon;
grant execute on function public.consume_credits(uuid, text, integer, text, jsonb) to authenticated, service_role;

/**
 * The organization's spendable balance by source, and what expires next. Expired credits
 * are never counted. Service role for any organization, members for their own.
 */
create function public.get_credit_balance(p_organization_id uuid) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_organization_role(p_organization_id, 'member');
  return private.credit_balance(p_organization_id);
end;
$$;
comment on function public.get_credit_balance(uuid) is
  'Spendable credits {total, purchased, subscription, next_expiry_at, expiring_amount}; expired credits never count.';
revoke all on function public.get_credit_balance(uuid) from public, anon;
grant execute on function public.get_credit_balance(uuid) to authenticated, service_role;

/**
 * Grants credits to an organization. Service role only. Purchased credits never expire
 * (p_expires_at must be null); subscription credits need a future p_expires_at. The same
 * p_reference grants once: a replay returns the first grant, a replay with other
 * parameters is PT409.
 */
create function public.grant_credits(
  p_organization_id uuid,
  p_amount integer,
  p_source text,
  p_expires_at timestamptz default null,
  p_reference text default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_lot record;
  v_lot_id bigint;
begin
  perform private.require_service();
  if p_amount is null or p_amount <= 0 then
    raise exception 'amount must be a positive integer' using errcode = '22023';
  end if;
  if p_source is null or p_source not in ('purchased', 'subscription') then
    raise exception 'source must be purchased or subscription' using errcode = '22023';
  end if;
  if p_source = 'purchased' and p_expires_at is not null then
    raise exception 'purchased credits never expire: p_expires_at must be null' using errcode = '22023';
  end if;
  if p_source = 'subscription' and p_expires_at is null then
    raise exception 'subscription credits need an expiry' using errcode = '22023';
  end if;
  perform private.require_valid_key(p_reference, 'reference');

  perform private.lock_organization(p_organization_id);

  if p_reference is not null then
    select l.id, l.granted, l.source, l.expires_at into v_lot
      from public.credit_lots l
     where l.organization_id = p_organization_id and l.reference = p_reference;
    if found then
      if v_lot.granted = p_amount and v_lot.source::text = p_source and v_lot.expires_at is not distinct from p_expires_at then
        return private.grant_result(v_lot.id, true);
      end if;
      raise exception 'reference % was already used for a different grant', p_reference using errcode = 'PT409';
    end if;
  end if;
  -- Checked after the replay lookup: a retry of a grant whose expiry has since passed replays.
  if p_expires_at <= now() then
    raise exception 'subscription credits need an expiry in the future' using errcode = '22023';
  end if;

  perform private.expire_organization_lots(p_organization_id);
  -- Two statements on purpose: grant_result is stable and must see the new lot.
  v_lot_id := private.grant_lot(p_organization_id, p_amount, p_source::public.credit_source, p_expires_at,
    p_reference, 'credits granted');
  return private.grant_result(v_lot_id, false);
end;
$$;
comment on function public.grant_credits(uuid, integer, text, timestamptz, text) is
  'Service role: grants purchased (never expire) or subscription (expiring) credits; once per p_reference.';
revoke all on function public.grant_credits(uuid, integer, text, timestamptz, text) from public, anon, authenticated;
grant execute on function public.grant_credits(uuid, integer, text, timestamptz, text) to service_role;

/**
 * Writes the expiry rows for every lot, in every organization, whose expiry has passed.
 * Service role only (run it on a schedule; reads never depend on it). Returns how many
 * lots expired.
 */
create function public.expire_credits() returns integer
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_organization_id uuid;
  v_count integer := 0;
begin
  perform private.require_service();
  for v_organization_id in
    select distinct l.organization_id
      from public.credit_lots l
     where l.remaining > 0 and l.expires_at <= now()
     order by 1
  loop
    perform private.lock_organization(v_organization_id);
    v_count := v_count + private.expire_organization_lots(v_organization_id);
  end loop;
  return v_count;
end;
$$;
comment on function public.expire_credits() is 'Service role: sweeps expired lots into expiry ledger rows; returns how many lots expired.';
revoke all on function public.expire_credits() from public, anon, authenticated;
grant execute on function public.expire_credits() to service_role;

/**
 * Allocates a paid billing period's subscription credits, once per invoice. Service role
 * only (the webhook, on invoice.paid). Subscription credits from earlier periods that would
 * outlive the new period's start expire at that start, so at most one period's allowance is
 * spendable. A replay for the same invoice returns the first allocation.
 */
create function public.allocate_subscription_credits(
  p_organization_id uuid,
  p_invoice_id text,
  p_credits integer,
  p_period_start timestamptz,
  p_period_end timestamptz,
  p_subscription_id uuid default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_lot record;
  v_lot_id bigint;
  v_expires_at timestamptz;
begin
  perform private.require_service();
  if p_invoice_id is null then
    raise exception 'invoice id is required' using errcode = '22023';
  end if;
  perform private.require_valid_key(p_invoice_id, 'invoice id');
  if p_credits is null or p_credits < 0 then
    raise exception 'credits must be zero or a positive integer' using errcode = '22023';
  end if;
  if p_period_start is null or p_period_end is null or p_period_end <= p_period_start then
    raise exception 'the period must have a start before its end' using errcode = '22023';
  end if;

  perform private.lock_organization(p_organization_id);

  select l.id, l.granted, l.period_end into v_lot
    from public.credit_lots l
   where l.organization_id = p_organization_id and l.reference = p_invoice_id;
  if found then
    if v_lot.granted = p_credits and v_lot.period_end = p_period_end then
      return private.grant_result(v_lot.id, true);
    end if;
    raise exception 'invoice % was already allocated with different credits or period', p_invoice_id using errcode = 'PT409';
  end if;
  if p_credits = 0 then
    -- A free plan allocates nothing; there is no lot to key the replay on, and none is needed.
    return jsonb_build_object('lot_id', null, 'transaction_id', null, 'granted', 0, 'source', 'subscription',
      'expires_at', p_period_end, 'balance', private.credit_balance(p_organization_id), 'idempotent_replay', false);
  end if;

  -- At most one period's allowance is spendable, whatever order the invoices arrive in:
  -- earlier periods end where this one starts (but never in the past, where credits may
  -- already have been spent from them), and this period ends where a later one starts.
  update public.credit_lots l
     set expires_at = greatest(p_period_start, now())
   where l.organization_id = p_organization_id
     and l.source = 'subscription'
     and l.remaining > 0
     and l.period_start < p_period_start
     and l.expires_at > greatest(p_period_start, now());
  select least(p_period_end, min(l.period_start)) into v_expires_at
    from public.credit_lots l
   where l.organization_id = p_organization_id
     and l.source = 'subscription'
     and l.period_start > p_period_start;
  v_expires_at := coalesce(v_expires_at, p_period_end);

  perform private.expire_organization_lots(p_organization_id);
  v_lot_id := private.grant_lot(p_organization_id, p_credits, 'subscription', v_expires_at, p_invoice_id,
    'subscription credits for the billing period', p_subscription_id, p_period_start, p_period_end);
  -- A late delivery for a period already over grants and expires at once, visibly.
  perform private.expire_organization_lots(p_organization_id);
  return private.grant_result(v_lot_id, false);
end;
$$;
comment on function public.allocate_subscription_credits(uuid, text, integer, timestamptz, timestamptz, uuid) is
  'Service role: grants a paid period''s subscription credits once per invoice, expiring at the period end; earlier periods expire at its start.';
revoke all on function public.allocate_subscription_credits(uuid, text, integer, timestamptz, timestamptz, uuid) from public, anon, authenticated;
grant execute on function public.allocate_subscription_credits(uuid, text, integer, timestamptz, timestamptz, uuid) to service_role;

/**
 * Claws back purchased credits for a refund, once per refund id. Service role only (the
 * webhook, on charge.refunded). Takes from the refunded purchase's lot first, then from
 * other purchased credits, never below zero; what had already been spent is recorded as
 * the shortfall rather than hidden.
 */
create function public.claw_back_refund(
  p_organization_id uuid,
  p_refund_id text,
  p_credits integer,
  p_purchase_reference text default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_prior record;
  v_lot record;
  v_needed integer := p_credits;
  v_take integer;
begin
  perform private.require_service();
  if p_refund_id is null then
    raise exception 'refund id is required' using errcode = '22023';
  end if;
  perform private.require_valid_key(p_refund_id, 'refund id');
  perform private.require_valid_key(p_purchase_reference, 'purchase reference');
  if p_credits is null or p_credits <= 0 then
    raise exception 'credits must be a positive integer' using errcode = '22023';
  end if;

  perform private.lock_organization(p_organization_id);

  select c.requested, c.purchase_reference into v_prior
    from public.credit_clawbacks c
   where c.organization_id = p_organization_id and c.refund_id = p_refund_id;
  if found then
    if v_prior.requested = p_credits and v_prior.purchase_reference is not distinct from p_purchase_reference then
      return (select jsonb_build_object('refund_id', c.refund_id, 'requested', c.requested, 'clawed_back', c.clawed_back,
                'shortfall', c.shortfall, 'balance', private.credit_balance(c.organization_id), 'idempotent_replay', true)
                from public.credit_clawbacks c
               where c.organization_id = p_organization_id and c.refund_id = p_refund_id);
    end if;
    raise exception 'refund % was already clawed back with different parameters', p_refund_id using errcode = 'PT409';
  end if;

  perform private.expire_organization_lots(p_organization_id);

  for v_lot in
    select l.id, l.remaining
      from public.credit_lots l
     where l.organization_id = p_organization_id
       and l.source = 'purchased'
       and l.remaining > 0
     order by (l.reference is not distinct from p_purchase_reference) desc, l.id
       for update
  loop
    exit when v_needed = 0;
    v_take := least(v_needed, v_lot.remaining);
    v_needed := v_needed - v_take;
    perform private.move_credits(v_lot.id, -v_take, 'refund', p_reference => p_refund_id,
      p_description => 'credits clawed back for a refund');
  end loop;

  insert into public.credit_clawbacks (organization_id, refund_id, purchase_reference, requested, clawed_back)
  values (p_organization_id, p_refund_id, p_purchase_reference, p_credits, p_credits - v_needed);

  return jsonb_build_object('refund_id', p_refund_id, 'requested', p_credits, 'clawed_back', p_credits - v_needed,
    'shortfall', v_needed, 'balance', private.credit_balance(p_organization_id), 'idempotent_replay', false);
end;
$$;
comment on function public.claw_back_refund(uuid, text, integer, text) is
  'Service role: removes up to p_credits purchased credits for a refund, once per refund id; records any shortfall.';
revoke all on function public.claw_back_refund(uuid, text, integer, text) from public, anon, authenticated;
grant execute on function public.claw_back_refund(uuid, text, integer, text) to service_role;
