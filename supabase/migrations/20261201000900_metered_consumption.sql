-- Metered consumption: reservations (reserve, settle, release, expiry), batches, spend limits,
-- and a consume_credits with fewer statements per call. The tables are in the previous
-- migration (it adds the enum values these functions use).
--
-- Every writer still takes the organization's lock first. Under it, a writer first writes
-- down the organization's reservations past their expiry (their credits go back to their
-- lots, and credits of lots that expired meanwhile expire), then expires lots past their
-- expiry, exactly as lazy lot expiry always worked: private.expire_organization_lots does
-- both, so every writer that called it before does both now. Reads never depend on it: an
-- expired, unswept reservation holds nothing in get_credit_balance.

-- ============================================================================
-- The ledger: reservation rows take credits out of a lot, release rows put them back
-- ============================================================================

alter table public.credit_transactions drop constraint credit_transactions_amount_sign;
alter table public.credit_transactions add constraint credit_transactions_amount_sign check (
  case kind
    when 'grant' then amount > 0
    when 'release' then amount > 0
    when 'adjustment' then amount <> 0
    else amount < 0
  end
);

-- move_credits gains the reservation whose credits move (a trailing parameter with a
-- default, so every existing call keeps working).
drop function private.move_credits(bigint, integer, public.credit_transaction_kind, uuid, text, text, text);

/**
 * Moves credit into (positive) or out of (negative) one lot and appends the ledger row that
 * records it, with the organization's total balance after the move. The caller holds the
 * organization's lock. Raises the low_balance alert when the move crosses the threshold.
 */
create function private.move_credits(
  p_lot_id bigint,
  p_amount integer,
  p_kind public.credit_transaction_kind,
  p_consumption_id uuid default null,
  p_event_key text default null,
  p_reference text default null,
  p_description text default '',
  p_reservation_id uuid default null
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
    event_key, reference, description, actor_id, reservation_id
  ) values (
    v_organization_id, p_kind, v_source, p_amount, v_balance_after,
    p_lot_id, p_consumption_id, p_event_key, p_reference, coalesce(p_description, ''),
    -- Expiry happens to an organization; it is not the action of whoever triggered the sweep.
    case when p_kind = 'expiry' then null else auth.uid() end,
    p_reservation_id
  )
  returning id into v_transaction_id;

  if p_amount < 0 then
    select o.low_balance_threshold into v_threshold from public.organizations o where o.id = v_organization_id;
    perform private.note_low_balance(v_organization_id, v_balance_after - p_amount, v_balance_after, v_threshold);
  end if;
  return v_transaction_id;
end;
$$;
revoke all on function private.move_credits(bigint, integer, public.credit_transaction_kind, uuid, text, text, text, uuid) from public;

/**
 * One low_balance alert per crossing below the organization's threshold, whatever moved the
 * balance (consumption, a reservation, expiry or a refund), and at most one open at a time.
 */
create function private.note_low_balance(p_organization_id uuid, p_before bigint, p_after bigint, p_threshold integer)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_after < p_threshold and p_before >= p_threshold then
    perform private.raise_alert(p_organization_id, 'low_balance', 'warning', 'Credit balance is low',
      pg_catalog.format('The balance fell to %s credits, below the threshold of %s.', p_after, p_threshold),
      jsonb_build_object('balance', p_after, 'threshold', p_threshold), 'low_balance');
  end if;
end;
$$;
revoke all on function private.note_low_balance(uuid, bigint, bigint, integer) from public;

-- ============================================================================
-- Reservation write-down (the lazy half of reservation expiry)
-- ============================================================================

/**
 * Puts back every credit a reservation still holds, into the lots it came from, as release
 * rows (one per lot, in the order they were reserved). The caller holds the lock and then
 * expires lots past their expiry, so credits returned to such a lot expire there.
 */
create function private.return_reserved_credits(
  p_organization_id uuid, p_reservation_id uuid, p_event_key text, p_description text
) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_holding record;
  v_returned integer := 0;
begin
  for v_holding in
    select t.lot_id, (-sum(t.amount))::integer as held
      from public.credit_transactions t
     where t.organization_id = p_organization_id and t.reservation_id = p_reservation_id
     group by t.lot_id
    having sum(t.amount) < 0
     order by min(t.id)
  loop
    perform private.move_credits(v_holding.lot_id, v_holding.held, 'release', p_event_key => p_event_key,
      p_description => p_description, p_reservation_id => p_reservation_id);
    v_returned := v_returned + v_holding.held;
  end loop;
  return v_returned;
end;
$$;
revoke all on function private.return_reserved_credits(uuid, uuid, text, text) from public;

/**
 * Writes down the organization's open reservations past their expiry: their credits go back
 * to their lots and they become `expired`. The caller holds the organization's lock.
 * Returns how many were written down.
 */
create function private.write_down_expired_reservations(p_organization_id uuid) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_reservation record;
  v_count integer := 0;
begin
  for v_reservation in
    select r.id, r.event_key
      from public.credit_reservations r
     where r.organization_id = p_organization_id and r.status = 'open' and r.expires_at <= now()
     order by r.expires_at, r.id
       for update
  loop
    perform private.return_reserved_credits(p_organization_id, v_reservation.id, v_reservation.event_key,
      'reservation expired: credits returned');
    update public.credit_reservations r
       set status = 'expired', closed_at = now()
     where r.organization_id = p_organization_id and r.id = v_reservation.id;
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
revoke all on function private.write_down_expired_reservations(uuid) from public;

/**
 * Writes down the organization's expired reservations, then writes the expiry rows for its
 * lots whose expiry has passed (now() is at or after expires_at) and empties them. The
 * caller holds the organization's lock. Returns how many lots expired.
 */
create or replace function private.expire_organization_lots(p_organization_id uuid) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lot record;
  v_count integer := 0;
begin
  perform private.write_down_expired_reservations(p_organization_id);
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

-- ============================================================================
-- Balances
-- ============================================================================

/** Credits held by the organization's live reservations (open and not past their expiry). */
create function private.reserved_credits(p_organization_id uuid) returns integer
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(sum(r.credits), 0)::integer
    from public.credit_reservations r
   where r.organization_id = p_organization_id and r.status = 'open' and r.expires_at > now();
$$;
revoke all on function private.reserved_credits(uuid) from public;

/**
 * The organization's spendable credit right now: expired lots never count, swept or not,
 * subscription credits on hold do not either, and reserved credits are not spendable
 * (`reserved` reports them). A reservation past its expiry holds nothing even before the
 * write-down: its credits count again where their lot is still live.
 */
create or replace function private.credit_balance(p_organization_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  with held as (
    select private.subscription_credits_held(p_organization_id) as held
  ), lapsed as (
    select t.lot_id, -sum(t.amount) as credits
      from public.credit_reservations r
      join public.credit_transactions t on t.organization_id = r.organization_id and t.reservation_id = r.id
     where r.organization_id = p_organization_id and r.status = 'open' and r.expires_at <= now()
     group by t.lot_id
  ), spendable as (
    select l.source, l.remaining + coalesce(x.credits, 0) as remaining, l.expires_at
      from public.credit_lots l
      left join lapsed x on x.lot_id = l.id
     where l.organization_id = p_organization_id
       and (l.remaining > 0 or x.credits > 0)
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

/** The balance as reservation, settlement, release and batch results give it. */
create function private.balance_summary(p_organization_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select private.credit_balance(p_organization_id) - 'next_expiry_at' - 'expiring_amount'
         || jsonb_build_object('reserved', private.reserved_credits(p_organization_id));
$$;
revoke all on function private.balance_summary(uuid) from public;

/**
 * The organization's spendable balance by source, what its live reservations hold, and what
 * expires next. Expired credits never count; reserved credits are not in total (nothing
 * else can spend them). Service role for any organization, members for their own.
 */
create or replace function public.get_credit_balance(p_organization_id uuid) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_organization_role(p_organization_id, 'member');
  return private.credit_balance(p_organization_id)
         || jsonb_build_object('reserved', private.reserved_credits(p_organization_id));
end;
$$;
comment on function public.get_credit_balance(uuid) is
  'Spendable credits {total, purchased, subscription, reserved, next_expiry_at, expiring_amount}; total excludes reserved credits; expired credits never count.';

-- ============================================================================
-- Spend limits
-- ============================================================================

/** The first day of the current calendar month in UTC. */
create function private.utc_month_start() returns date
language sql
stable
set search_path = ''
as $$
  select (pg_catalog.date_trunc('month', now() at time zone 'utc'))::date;
$$;
revoke all on function private.utc_month_start() from public;

/**
 * What counts against the spend limit now: credits consumed this UTC month (the counter row,
 * kept while a limit is set) plus the credits live reservations hold. The caller holds the
 * lock and has written down expired reservations.
 */
create function private.spend_limit_usage(p_organization_id uuid) returns bigint
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce((select m.consumed_credits from public.credit_spend_months m
                    where m.organization_id = p_organization_id and m.month_start = private.utc_month_start()), 0)
       + private.reserved_credits(p_organization_id);
$$;
revoke all on function private.spend_limit_usage(uuid) from public;

/**
 * Raises the spend_limit alert the first time in a month the organization's usage reaches
 * its limit (once per month, even after the alert is dismissed).
 */
create function private.note_spend_limit_reached(p_organization_id uuid, p_limit integer, p_usage bigint) returns void
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
      pg_catalog.format('This month''s usage reached %s credits, the monthly limit of %s. Usage beyond it is refused until next month or a higher limit.',
        p_usage, p_limit),
      jsonb_build_object('limit', p_limit, 'usage', p_usage, 'month', v_month),
      'spend_limit:' || pg_catalog.to_char(v_month, 'YYYY-MM'));
  end if;
end;
$$;
revoke all on function private.note_spend_limit_reached(uuid, integer, bigint) from public;

/**
 * Counts credits just consumed against this month's spend (called only while a limit is set)
 * and raises the alert when usage reached the limit. The caller holds the lock.
 */
create function private.record_spend(p_organization_id uuid, p_credits bigint, p_limit integer) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_usage bigint;
begin
  if p_credits > 0 then
    insert into public.credit_spend_months as m (organization_id, month_start, consumed_credits)
    values (p_organization_id, private.utc_month_start(), p_credits)
    on conflict (organization_id, month_start) do update
      set consumed_credits = m.consumed_credits + excluded.consumed_credits, updated_at = now();
  end if;
  v_usage := private.spend_limit_usage(p_organization_id);
  if v_usage >= p_limit then
    perform private.note_spend_limit_reached(p_organization_id, p_limit, v_usage);
  end if;
end;
$$;
revoke all on function private.record_spend(uuid, bigint, integer) from public;

/**
 * Sets the organization's monthly spend limit in credits (null removes it). Owners and
 * admins (and the service role). This month's consumption is counted from the consumptions
 * when a limit is set; from then on every consumption adds to the month's counter.
 */
create function public.set_spend_limit(p_organization_id uuid, p_monthly_credits integer) returns void
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_month date := private.utc_month_start();
  v_usage bigint;
begin
  if p_organization_id is null then
    raise exception 'organization id is required' using errcode = '22023';
  end if;
  perform private.require_organization_role(p_organization_id, 'admin');
  if p_monthly_credits is not null and p_monthly_credits < 0 then
    raise exception 'the monthly spend limit must be zero or a positive integer (null removes it)' using errcode = '22023';
  end if;
  perform private.lock_organization(p_organization_id);
  perform private.expire_organization_lots(p_organization_id);

  update public.organizations o set monthly_spend_limit = p_monthly_credits where o.id = p_organization_id;
  if p_monthly_credits is null then
    return;
  end if;
  insert into public.credit_spend_months as m (organization_id, month_start, consumed_credits)
  select p_organization_id, v_month, coalesce(sum(c.credits), 0)
    from public.credit_consumptions c
   where c.organization_id = p_organization_id
     and c.created_at >= (v_month::timestamp at time zone 'utc')
  on conflict (organization_id, month_start) do update
    set consumed_credits = excluded.consumed_credits, updated_at = now();
  v_usage := private.spend_limit_usage(p_organization_id);
  if v_usage >= p_monthly_credits then
    perform private.note_spend_limit_reached(p_organization_id, p_monthly_credits, v_usage);
  end if;
end;
$$;
comment on function public.set_spend_limit(uuid, integer) is
  'Owners and admins: caps the credits consumed per UTC month (live reservations count); null removes the cap. Errors: 42501, 22023, PT404.';
revoke all on function public.set_spend_limit(uuid, integer) from public, anon;
grant execute on function public.set_spend_limit(uuid, integer) to authenticated, service_role;

/**
 * The organization's monthly spend limit and this month's usage against it, for the
 * dashboard: {"monthly_credits": int|null, "month_start": date, "consumed_this_month": int,
 * "reserved": int, "remaining": int|null}. Any member (and the service role).
 */
create function public.get_spend_limit(p_organization_id uuid) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_limit integer;
  v_month date := private.utc_month_start();
  v_consumed bigint;
  v_reserved integer;
begin
  perform private.require_organization_role(p_organization_id, 'member');
  select o.monthly_spend_limit into v_limit from public.organizations o where o.id = p_organization_id;
  if not found then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  if v_limit is not null then
    select m.consumed_credits into v_consumed from public.credit_spend_months m
     where m.organization_id = p_organization_id and m.month_start = v_month;
  else
    select sum(c.credits) into v_consumed from public.credit_consumptions c
     where c.organization_id = p_organization_id and c.created_at >= (v_month::timestamp at time zone 'utc');
  end if;
  v_consumed := coalesce(v_consumed, 0);
  v_reserved := private.reserved_credits(p_organization_id);
  return jsonb_build_object(
    'monthly_credits', v_limit,
    'month_start', v_month,
    'consumed_this_month', v_consumed,
    'reserved', v_reserved,
    'remaining', case when v_limit is null then null else greatest(v_limit - v_consumed - v_reserved, 0) end
  );
end;
$$;
comment on function public.get_spend_limit(uuid) is
  'Members: the monthly spend limit (null: none) and this UTC month''s consumption and reservations against it.';
revoke all on function public.get_spend_limit(uuid) from public, anon;
grant execute on function public.get_spend_limit(uuid) to authenticated, service_role;

-- ============================================================================
-- consume_credits: the same rules in three statements
-- ============================================================================

/**
 * Spends credits for a usage event: cost × quantity, all or nothing, in the organization's
 * precedence order, never from an expired lot nor from reserved credits, within the monthly
 * spend limit. The same idempotency key returns the first result again.
 *
 * The common path is three statements: the organization's lock (with its rules and the
 * event's cost), one read of its lots that also says whether anything needs writing down
 * first (an expired lot or reservation), and one write of the lots, the consumption and its
 * ledger rows. Runs in the caller's transaction: a host app can consume inside its own and
 * roll back.
 *
 * Callable by the service role for any organization and by members for their own.
 * SQLSTATEs: PT402 not enough credits, PT429 spend limit reached, 42501 not allowed,
 * PT404 unknown or inactive event, 22023 bad quantity / idempotency key / metadata,
 * PT409 key reused with other parameters.
 */
create or replace function public.consume_credits(
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
-- Every statement here is keyed by the organization; planning the write statement for each
-- call's values (a custom plan) cost more than the rest of the call, and it ran under the
-- organization's lock.
set plan_cache_mode = 'force_generic_plan'
as $$
declare
  v_metadata jsonb := coalesce(p_metadata, '{}'::jsonb);
  v_organization record;
  v_cost bigint;
  v_prior record;
  v_plan record;
  v_actor uuid;
  v_consumption_id uuid;
  v_result jsonb;
begin
  -- Input first: a bad call fails before it takes any lock.
  if p_organization_id is null then
    raise exception 'organization id is required' using errcode = '22023';
  end if;
  if p_quantity is null or p_quantity <= 0 then
    raise exception 'quantity must be a positive integer' using errcode = '22023';
  end if;
  if p_idempotency_key is not null then
    perform private.require_valid_key(p_idempotency_key, 'idempotency key');
  end if;
  if jsonb_typeof(v_metadata) <> 'object' or octet_length(v_metadata::text) > 16384 then
    raise exception 'metadata must be a JSON object of at most 16 KB' using errcode = '22023';
  end if;

  perform private.require_organization_role(p_organization_id, 'member');

  -- The organization's lock (as private.lock_organization takes it), its rules, and the
  -- event's cost. The organization's own columns are re-read once the lock is granted.
  select o.credit_precedence as precedence, o.monthly_spend_limit as spend_limit,
         o.low_balance_threshold as threshold,
         (select e.credit_cost from public.credit_events e where e.event_key = p_event_key and e.is_active) as unit_cost
    into v_organization
    from public.organizations o
   where o.id = p_organization_id
     for no key update of o;
  if not found then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;

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

  if v_organization.unit_cost is null then
    raise exception 'unknown or inactive event key: %', coalesce(p_event_key, 'null') using errcode = 'PT404';
  end if;
  v_cost := v_organization.unit_cost::bigint * p_quantity;
  if v_cost > 2147483647 then
    raise exception 'quantity too large: % credits exceeds the largest single consumption', v_cost using errcode = '22023';
  end if;

  v_consumption_id := gen_random_uuid();
  v_actor := auth.uid();

  -- One statement plans and writes: the lots in precedence order, what this consumption takes
  -- from each, the verdict, and (only when the verdict is ok) the lots, the consumption and
  -- its ledger rows. It starts after the lock is granted, so it sees every earlier writer's
  -- work; the lock keeps every other lot writer out until this transaction ends, and the
  -- update locks the lots it changes. When an expired lot or reservation is still on the
  -- books nothing is written: it is written down first (as every writer does) and the
  -- statement runs again. The ledger rows' foreign key to the consumption is checked at the
  -- statement's end, when the consumption row exists.
  loop
    with held as (
      select exists (
        select 1 from public.organization_subscriptions s
         where s.organization_id = p_organization_id
           and (s.status = 'unpaid' or (s.status = 'past_due' and s.grace_period_end <= now()))) as held
    ), lot as (
      select l.id, l.source, l.remaining, l.expires_at
        from public.credit_lots l
       where l.organization_id = p_organization_id and l.remaining > 0
    ), spendable as (
      select lot.id, lot.source, lot.remaining,
             sum(lot.remaining) over (
               order by case when v_organization.precedence = 'purchased_first' then lot.source <> 'purchased'
                             else lot.expires_at is null end,
                        lot.expires_at nulls last, lot.id) as upto
        from lot
       where (lot.expires_at is null or lot.expires_at > now())
         and not (lot.source = 'subscription' and (select h.held from held h))
    ), take as (
      select s.id, s.source, least(s.remaining, v_cost - (s.upto - s.remaining))::integer as credits, s.upto
        from spendable s
       where s.upto - s.remaining < v_cost
    ), plan as (
      select (select coalesce(sum(lot.remaining), 0) from lot)::integer as ledger_balance,
             (select coalesce(sum(s.remaining) filter (where s.source = 'purchased'), 0) from spendable s)::integer as purchased,
             (select coalesce(sum(s.remaining) filter (where s.source = 'subscription'), 0) from spendable s)::integer as subscription,
             (select coalesce(sum(t.credits) filter (where t.source = 'purchased'), 0) from take t)::integer as purchased_used,
             (select coalesce(sum(t.credits) filter (where t.source = 'subscription'), 0) from take t)::integer as subscription_used,
             (select h.held from held h) as held,
             case when v_organization.spend_limit is null then 0 else private.spend_limit_usage(p_organization_id) end as usage,
             exists (select 1 from lot where lot.expires_at <= now())
               or exists (select 1 from public.credit_reservations r
                           where r.organization_id = p_organization_id and r.status = 'open' and r.expires_at <= now())
               as stale
    ), verdict as (
      select p.*,
             case when p.stale then 'stale'
                  when v_organization.spend_limit is not null and p.usage + v_cost > v_organization.spend_limit then 'spend_limit'
                  when p.purchased + p.subscription < v_cost then 'insufficient'
                  else 'ok' end as verdict,
             jsonb_build_object(
               'transaction_id', v_consumption_id,
               'credits_consumed', v_cost,
               'purchased_used', p.purchased_used,
               'subscription_used', p.subscription_used,
               'balance', jsonb_build_object(
                 'total', p.purchased + p.subscription - v_cost,
                 'purchased', p.purchased - p.purchased_used,
                 'subscription', p.subscription - p.subscription_used),
               'idempotent_replay', false) as result
        from plan p
    ), moved as (
      update public.credit_lots l
         set remaining = l.remaining - t.credits
        from take t, verdict v
       where v.verdict = 'ok' and l.id = t.id
    ), consumption as (
      insert into public.credit_consumptions (
        id, organization_id, event_key, quantity, credits, purchased_used, subscription_used,
        precedence, idempotency_key, metadata, result, actor_id
      )
      select v_consumption_id, p_organization_id, p_event_key, p_quantity, v_cost, v.purchased_used,
             v.subscription_used, v_organization.precedence, p_idempotency_key, v_metadata, v.result, v_actor
        from verdict v
       where v.verdict = 'ok'
    ), ledger as (
      insert into public.credit_transactions (
        organization_id, kind, source, amount, balance_after, lot_id, consumption_id, event_key, actor_id
      )
      select p_organization_id, 'consumption', t.source, -t.credits,
             v.ledger_balance - (least(t.upto, v_cost))::integer, t.id, v_consumption_id, p_event_key, v_actor
        from take t, verdict v
       where v.verdict = 'ok'
       order by t.upto
    )
    select v.verdict, v.result, v.ledger_balance, v.purchased + v.subscription as available, v.held, v.usage
      into v_plan
      from verdict v;
    exit when v_plan.verdict <> 'stale';
    perform private.expire_organization_lots(p_organization_id);
  end loop;

  if v_plan.verdict = 'spend_limit' then
    raise exception 'spend limit reached: % credits would take this month''s usage (%) above the limit of %',
      v_cost, v_plan.usage, v_organization.spend_limit using errcode = 'PT429';
  end if;
  if v_plan.verdict = 'insufficient' then
    raise exception 'insufficient credits: % required, % available%', v_cost, v_plan.available,
      case when v_plan.held then ' (subscription credits are on hold until the past-due invoice is paid)' else '' end
      using errcode = 'PT402';
  end if;
  v_result := v_plan.result;

  if v_organization.spend_limit is not null then
    perform private.record_spend(p_organization_id, v_cost, v_organization.spend_limit);
  end if;
  if v_plan.ledger_balance - v_cost < v_organization.threshold then
    perform private.note_low_balance(p_organization_id, v_plan.ledger_balance, v_plan.ledger_balance - v_cost,
      v_organization.threshold);
  end if;
  return v_result;
end;
$$;
comment on function public.consume_credits(uuid, text, integer, text, jsonb) is
  'Spends cost × quantity credits for a usage event, all or nothing, in precedence order, within the spend limit; idempotent per key. Errors: PT402, PT429, 42501, PT404, 22023, PT409.';

-- ============================================================================
-- consume_credits_batch
-- ============================================================================

/**
 * Consumes up to 1,000 usage events in one transaction under one organization lock. Events
 * apply in array order, each all or nothing on its own; a failed event does not stop the
 * others. Idempotency keys share consume_credits' namespace.
 *
 * Set-based: one statement judges every event (shape, event, earlier consumption with its
 * key), a loop over plain arrays decides in order which fit the balance and the spend limit
 * (arithmetic only), and one statement writes the lots, every consumption and the ledger:
 * one ledger row per lot the batch drew from (reference `batch:<id>`), while each event is
 * its own credit_consumptions row (batch_id) with the result consume_credits would have
 * returned.
 *
 * A malformed batch (not an array, empty, over 1,000, an element not an object) is 22023 and
 * applies nothing. Other errors as consume_credits.
 */
create function public.consume_credits_batch(p_organization_id uuid, p_events jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
set plan_cache_mode = 'force_generic_plan'
as $$
declare
  v_count integer;
  v_organization record;
  v_balance record;
  v_status text[];
  v_error text[];
  v_event_key text[];
  v_quantity integer[];
  v_cost bigint[];
  v_idempotency_key text[];
  v_metadata jsonb[];
  v_transaction_id uuid[];
  v_earlier integer[];
  v_available bigint;
  v_usage bigint;
  v_limit_refused boolean := false;
  v_consumed bigint := 0;
  v_consumed_events integer := 0;
  v_batch_id uuid := gen_random_uuid();
  v_actor uuid := auth.uid();
  v_results jsonb;
  i integer;
  j integer;
begin
  if p_organization_id is null then
    raise exception 'organization id is required' using errcode = '22023';
  end if;
  if p_events is null or jsonb_typeof(p_events) <> 'array' then
    raise exception 'events must be a JSON array of 1 to 1000 objects' using errcode = '22023';
  end if;
  v_count := jsonb_array_length(p_events);
  if v_count < 1 or v_count > 1000 then
    raise exception 'events must be a JSON array of 1 to 1000 objects (got %)', v_count using errcode = '22023';
  end if;
  if exists (select 1 from jsonb_array_elements(p_events) e where jsonb_typeof(e) <> 'object') then
    raise exception 'every event must be a JSON object' using errcode = '22023';
  end if;

  perform private.require_organization_role(p_organization_id, 'member');

  select o.credit_precedence as precedence, o.monthly_spend_limit as spend_limit, o.low_balance_threshold as threshold
    into v_organization
    from public.organizations o
   where o.id = p_organization_id
     for no key update;
  if not found then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  perform private.expire_organization_lots(p_organization_id);

  -- Every event judged on its own, in one statement: its shape, its event, and an earlier
  -- consumption with its key (replayed with the same parameters, a conflict otherwise).
  with event as (
    select e.n::integer as n, e.v,
           e.v ->> 'event_key' as event_key,
           case when coalesce(jsonb_typeof(e.v -> 'quantity'), 'null') = 'null' then 1::numeric
                when jsonb_typeof(e.v -> 'quantity') = 'number' then (e.v ->> 'quantity')::numeric end as quantity,
           case when jsonb_typeof(e.v -> 'idempotency_key') = 'string' then e.v ->> 'idempotency_key' end as idempotency_key,
           case when coalesce(jsonb_typeof(e.v -> 'metadata'), 'null') = 'null' then '{}'::jsonb else e.v -> 'metadata' end as metadata
      from jsonb_array_elements(p_events) with ordinality as e (v, n)
  ), judged as materialized (
    select ev.n, ev.event_key, ev.idempotency_key, ev.metadata,
           case when ev.quantity between 1 and 2147483647 and ev.quantity = trunc(ev.quantity) then ev.quantity::integer end as quantity,
           case
             when exists (select 1 from jsonb_object_keys(ev.v) k where k not in ('event_key', 'quantity', 'idempotency_key', 'metadata'))
               then 'unknown field: expected event_key, quantity, idempotency_key, metadata'
             when coalesce(jsonb_typeof(ev.v -> 'event_key'), 'null') <> 'string' then 'event_key must be a string'
             when ev.quantity is null or not (ev.quantity between 1 and 2147483647 and ev.quantity = trunc(ev.quantity))
               then 'quantity must be a positive integer'
             when coalesce(jsonb_typeof(ev.v -> 'idempotency_key'), 'null') not in ('null', 'string')
               or (ev.idempotency_key is not null
                   and (char_length(ev.idempotency_key) not between 1 and 255 or ev.idempotency_key ~ '[[:cntrl:]]'
                        or btrim(ev.idempotency_key) = ''))
               then 'idempotency_key must be 1 to 255 characters without control characters'
             when jsonb_typeof(ev.metadata) <> 'object' or octet_length(ev.metadata::text) > 16384
               then 'metadata must be a JSON object of at most 16 KB'
           end as invalid
      from event ev
  ), decided as (
    select j.n, j.event_key, j.quantity, j.idempotency_key, j.metadata,
           case
             when j.invalid is not null then 'invalid'
             when c.id is not null and c.event_key = j.event_key and c.quantity = j.quantity and c.metadata = j.metadata then 'replayed'
             when c.id is not null then 'conflict'
             when e.credit_cost is null then 'unknown_event'
             when e.credit_cost::bigint * j.quantity > 2147483647 then 'invalid'
             else 'pending'
           end as status,
           case
             when j.invalid is not null then j.invalid
             when c.id is not null and c.event_key = j.event_key and c.quantity = j.quantity and c.metadata = j.metadata then null
             when c.id is not null then pg_catalog.format('idempotency key %s was already used with different parameters', j.idempotency_key)
             when e.credit_cost is null then pg_catalog.format('unknown or inactive event key: %s', j.event_key)
             when e.credit_cost::bigint * j.quantity > 2147483647 then 'quantity too large'
           end as error,
           coalesce(c.credits, e.credit_cost::bigint * j.quantity) as cost,
           c.id as prior_id,
           -- The previous event of this batch with the same key (valid or not; the loop walks back).
           case when j.idempotency_key is not null and j.invalid is null
                then lag(j.n) over (partition by j.idempotency_key, j.invalid is null order by j.n) end as earlier
      from judged j
      left join public.credit_events e on e.event_key = j.event_key and e.is_active and j.invalid is null
      -- A lookup per keyed event through the idempotency index (a join could scan the table).
      left join lateral (
        select c.id, c.event_key, c.quantity, c.metadata, c.credits
          from public.credit_consumptions c
         where c.organization_id = p_organization_id
           and c.idempotency_key = j.idempotency_key
           and c.idempotency_key is not null
      ) c on j.idempotency_key is not null and j.invalid is null
  )
  -- One sort for all nine arrays (an aggregate's own order by would sort its input again).
  select array_agg(d.status), array_agg(d.error), array_agg(d.event_key), array_agg(d.quantity), array_agg(d.cost),
         array_agg(d.idempotency_key), array_agg(d.metadata), array_agg(d.prior_id), array_agg(d.earlier)
    into v_status, v_error, v_event_key, v_quantity, v_cost, v_idempotency_key, v_metadata, v_transaction_id, v_earlier
    from (select * from decided order by decided.n) d;

  -- What the events may draw on, after the write-down above.
  with held as (
    select private.subscription_credits_held(p_organization_id) as held
  )
  select coalesce(sum(l.remaining), 0)::bigint as ledger_balance,
         coalesce(sum(l.remaining) filter (where l.source = 'purchased' and (l.expires_at is null or l.expires_at > now())), 0)::bigint as purchased,
         coalesce(sum(l.remaining) filter (where l.source = 'subscription' and l.expires_at > now()
                                             and not (select h.held from held h)), 0)::bigint as subscription
    into v_balance
    from public.credit_lots l
   where l.organization_id = p_organization_id and l.remaining > 0;
  v_available := v_balance.purchased + v_balance.subscription;
  if v_organization.spend_limit is not null then
    v_usage := private.spend_limit_usage(p_organization_id);
  end if;

  -- In array order: an event whose key an earlier event of the batch consumed replays it (or
  -- conflicts); the others consume if they fit the spend limit and the balance.
  for i in 1 .. v_count loop
    continue when v_status[i] <> 'pending';
    j := v_earlier[i];
    while j is not null loop
      if v_status[j] = 'consumed' then
        if v_event_key[j] = v_event_key[i] and v_quantity[j] = v_quantity[i] and v_metadata[j] = v_metadata[i] then
          v_status[i] := 'replayed';
          v_transaction_id[i] := v_transaction_id[j];
        else
          v_status[i] := 'conflict';
          v_error[i] := pg_catalog.format('idempotency key %s was already used with different parameters', v_idempotency_key[i]);
        end if;
        exit;
      end if;
      j := v_earlier[j];
    end loop;
    continue when v_status[i] <> 'pending';
    if v_organization.spend_limit is not null and v_usage + v_cost[i] > v_organization.spend_limit then
      v_status[i] := 'spend_limit_reached';
      v_error[i] := pg_catalog.format('spend limit reached: %s credits would take this month''s usage (%s) above the limit of %s',
        v_cost[i], v_usage, v_organization.spend_limit);
      v_limit_refused := true;
    elsif v_available < v_cost[i] then
      v_status[i] := 'insufficient_credits';
      v_error[i] := pg_catalog.format('insufficient credits: %s required, %s available', v_cost[i], v_available);
    else
      v_status[i] := 'consumed';
      v_transaction_id[i] := gen_random_uuid();
      v_available := v_available - v_cost[i];
      v_usage := v_usage + v_cost[i];
      v_consumed := v_consumed + v_cost[i];
      v_consumed_events := v_consumed_events + 1;
    end if;
  end loop;

  if v_consumed > 0 then
    -- Each consumed event covers [hi - credits, hi) of the batch's credits in order, each
    -- spendable lot [hi - remaining, hi) of the organization's in precedence order; an event
    -- takes from a lot what the two intervals share.
    with event as (
      select e.n, e.id, e.event_key, e.quantity, e.credits::integer as credits, e.idempotency_key, e.metadata,
             sum(e.credits) over (order by e.n) as hi
        from unnest(v_status, v_transaction_id, v_event_key, v_quantity, v_cost, v_idempotency_key, v_metadata)
               with ordinality as e (status, id, event_key, quantity, credits, idempotency_key, metadata, n)
       where e.status = 'consumed'
    ), held as (
      select private.subscription_credits_held(p_organization_id) as held
    ), lot as materialized (
      select l.id, l.source, l.remaining,
             sum(l.remaining) over (
               order by case when v_organization.precedence = 'purchased_first' then l.source <> 'purchased'
                             else l.expires_at is null end,
                        l.expires_at nulls last, l.id) as hi
        from public.credit_lots l
       where l.organization_id = p_organization_id and l.remaining > 0
         and (l.expires_at is null or l.expires_at > now())
         and not (l.source = 'subscription' and (select h.held from held h))
    ), piece as materialized (
      select e.n, e.id, e.event_key, e.quantity, e.credits as event_credits, e.idempotency_key, e.metadata,
             l.id as lot_id, l.source, l.hi as lot_hi,
             (least(e.hi, l.hi) - greatest(e.hi - e.credits, l.hi - l.remaining))::integer as credits
        from event e
        join lot l on l.hi - l.remaining < e.hi and e.hi - e.credits < l.hi
    ), per_event as (
      -- Window functions instead of joins back to the events: what each event used by source,
      -- and (ordered by event, so all of an event's pieces are peers) the running totals
      -- through its end.
      select p.*,
             coalesce(sum(p.credits) filter (where p.source = 'purchased') over (partition by p.n), 0)::integer as purchased_used,
             coalesce(sum(p.credits) filter (where p.source = 'subscription') over (partition by p.n), 0)::integer as subscription_used,
             coalesce(sum(p.credits) filter (where p.source = 'purchased') over (order by p.n), 0) as purchased_so_far,
             coalesce(sum(p.credits) filter (where p.source = 'subscription') over (order by p.n), 0) as subscription_so_far,
             row_number() over (partition by p.n order by p.lot_hi) as piece_number
        from piece p
    ), per_lot as (
      select p.lot_id, p.source, p.lot_hi, sum(p.credits)::integer as credits
        from piece p
       group by p.lot_id, p.source, p.lot_hi
    ), moved as (
      update public.credit_lots l
         set remaining = l.remaining - pl.credits
        from per_lot pl
       where l.id = pl.lot_id
    ), consumed as (
      insert into public.credit_consumptions (
        id, organization_id, event_key, quantity, credits, purchased_used, subscription_used,
        precedence, idempotency_key, metadata, result, actor_id, batch_id
      )
      select e.id, p_organization_id, e.event_key, e.quantity, e.event_credits, e.purchased_used, e.subscription_used,
             v_organization.precedence, e.idempotency_key, e.metadata,
             jsonb_build_object(
               'transaction_id', e.id,
               'credits_consumed', e.event_credits,
               'purchased_used', e.purchased_used,
               'subscription_used', e.subscription_used,
               'balance', jsonb_build_object(
                 'total', v_balance.purchased + v_balance.subscription - e.purchased_so_far - e.subscription_so_far,
                 'purchased', v_balance.purchased - e.purchased_so_far,
                 'subscription', v_balance.subscription - e.subscription_so_far),
               'idempotent_replay', false),
             v_actor, v_batch_id
        from per_event e
       where e.piece_number = 1
       order by e.n
    )
    insert into public.credit_transactions (
      organization_id, kind, source, amount, balance_after, lot_id, reference, description, actor_id
    )
    select p_organization_id, 'consumption', pl.source, -pl.credits,
           v_balance.ledger_balance - sum(pl.credits) over (order by pl.lot_hi), pl.lot_id,
           'batch:' || v_batch_id, pg_catalog.format('%s usage events in one batch', v_consumed_events), v_actor
      from per_lot pl
     order by pl.lot_hi;

    perform private.note_low_balance(p_organization_id, v_balance.ledger_balance, v_balance.ledger_balance - v_consumed,
      v_organization.threshold);
  end if;

  if v_organization.spend_limit is not null then
    perform private.record_spend(p_organization_id, v_consumed, v_organization.spend_limit);
    if v_limit_refused then
      perform private.note_spend_limit_reached(p_organization_id, v_organization.spend_limit, v_usage);
    end if;
  end if;

  select jsonb_agg(
           case when r.status in ('consumed', 'replayed')
                then jsonb_build_object('status', r.status, 'transaction_id', r.id, 'credits_consumed', r.credits)
                else jsonb_build_object('status', r.status, 'error', r.error) end
           order by r.n)
    into v_results
    from unnest(v_status, v_transaction_id, v_cost, v_error) with ordinality as r (status, id, credits, error, n);

  return jsonb_build_object('results', v_results, 'credits_consumed', v_consumed,
    'balance', private.balance_summary(p_organization_id));
end;
$$;
comment on function public.consume_credits_batch(uuid, jsonb) is
  'Consumes 1 to 1000 usage events in order in one transaction, each all or nothing; per-event results. Errors: 22023 malformed batch, 42501, PT404.';
revoke all on function public.consume_credits_batch(uuid, jsonb) from public, anon;
grant execute on function public.consume_credits_batch(uuid, jsonb) to authenticated, service_role;

-- ============================================================================
-- Reservations
-- ============================================================================

/**
 * Reserves cost × quantity credits for a usage event whose cost is known only when it
 * finishes: they leave the lots now, in precedence order, as reservation ledger rows, and
 * nothing else can spend them until the reservation is settled, released or expires
 * (p_ttl_seconds, 1 to 86400). Same callers and errors as consume_credits (PT402, PT429,
 * 42501, PT404, 22023, PT409); the same idempotency key returns the first reservation again.
 * Like consume_credits, the common path is the lock and one statement that plans and writes.
 */
create function public.reserve_credits(
  p_organization_id uuid,
  p_event_key text,
  p_quantity integer default 1,
  p_idempotency_key text default null,
  p_ttl_seconds integer default 900,
  p_metadata jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
set plan_cache_mode = 'force_generic_plan'
as $$
declare
  v_metadata jsonb := coalesce(p_metadata, '{}'::jsonb);
  v_organization record;
  v_prior record;
  v_cost bigint;
  v_plan record;
  v_reservation_id uuid := gen_random_uuid();
  v_expires_at timestamptz;
  v_actor uuid;
begin
  if p_organization_id is null then
    raise exception 'organization id is required' using errcode = '22023';
  end if;
  if p_quantity is null or p_quantity <= 0 then
    raise exception 'quantity must be a positive integer' using errcode = '22023';
  end if;
  if p_ttl_seconds is null or p_ttl_seconds not between 1 and 86400 then
    raise exception 'ttl_seconds must be between 1 and 86400' using errcode = '22023';
  end if;
  if p_idempotency_key is not null then
    perform private.require_valid_key(p_idempotency_key, 'idempotency key');
  end if;
  if jsonb_typeof(v_metadata) <> 'object' or octet_length(v_metadata::text) > 16384 then
    raise exception 'metadata must be a JSON object of at most 16 KB' using errcode = '22023';
  end if;

  perform private.require_organization_role(p_organization_id, 'member');

  select o.credit_precedence as precedence, o.monthly_spend_limit as spend_limit, o.low_balance_threshold as threshold,
         (select e.credit_cost from public.credit_events e where e.event_key = p_event_key and e.is_active) as unit_cost
    into v_organization
    from public.organizations o
   where o.id = p_organization_id
     for no key update of o;
  if not found then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;

  if p_idempotency_key is not null then
    select r.event_key, r.quantity, r.ttl_seconds, r.metadata, r.result into v_prior
      from public.credit_reservations r
     where r.organization_id = p_organization_id and r.idempotency_key = p_idempotency_key;
    if found then
      if v_prior.event_key = p_event_key and v_prior.quantity = p_quantity and v_prior.ttl_seconds = p_ttl_seconds
         and v_prior.metadata = v_metadata then
        return v_prior.result || jsonb_build_object('idempotent_replay', true);
      end if;
      raise exception 'idempotency key % was already used for a different reservation', p_idempotency_key
        using errcode = 'PT409';
    end if;
  end if;

  if v_organization.unit_cost is null then
    raise exception 'unknown or inactive event key: %', coalesce(p_event_key, 'null') using errcode = 'PT404';
  end if;
  v_cost := v_organization.unit_cost::bigint * p_quantity;
  if v_cost > 2147483647 then
    raise exception 'quantity too large: % credits exceeds the largest single reservation', v_cost using errcode = '22023';
  end if;
  v_expires_at := now() + make_interval(secs => p_ttl_seconds);
  v_actor := auth.uid();

  -- As in consume_credits: one statement after the lock plans (lots in precedence order, what
  -- the reservation takes from each, the verdict) and, when the verdict is ok, writes the
  -- lots, the reservation and its ledger rows. Expired lots or reservations on the books are
  -- written down first and the statement runs again.
  loop
    with held as (
      select exists (
        select 1 from public.organization_subscriptions s
         where s.organization_id = p_organization_id
           and (s.status = 'unpaid' or (s.status = 'past_due' and s.grace_period_end <= now()))) as held
    ), lot as (
      select l.id, l.source, l.remaining, l.expires_at
        from public.credit_lots l
       where l.organization_id = p_organization_id and l.remaining > 0
    ), spendable as (
      select lot.id, lot.source, lot.remaining,
             sum(lot.remaining) over (
               order by case when v_organization.precedence = 'purchased_first' then lot.source <> 'purchased'
                             else lot.expires_at is null end,
                        lot.expires_at nulls last, lot.id) as upto
        from lot
       where (lot.expires_at is null or lot.expires_at > now())
         and not (lot.source = 'subscription' and (select h.held from held h))
    ), take as (
      select s.id, s.source, least(s.remaining, v_cost - (s.upto - s.remaining))::integer as credits, s.upto
        from spendable s
       where s.upto - s.remaining < v_cost
    ), plan as (
      select (select coalesce(sum(lot.remaining), 0) from lot)::integer as ledger_balance,
             (select coalesce(sum(s.remaining) filter (where s.source = 'purchased'), 0) from spendable s)::integer as purchased,
             (select coalesce(sum(s.remaining) filter (where s.source = 'subscription'), 0) from spendable s)::integer as subscription,
             (select coalesce(sum(t.credits) filter (where t.source = 'purchased'), 0) from take t)::integer as purchased_used,
             (select coalesce(sum(t.credits) filter (where t.source = 'subscription'), 0) from take t)::integer as subscription_used,
             (select h.held from held h) as held,
             private.reserved_credits(p_organization_id) as reserved,
             case when v_organization.spend_limit is null then 0 else private.spend_limit_usage(p_organization_id) end as usage,
             exists (select 1 from lot where lot.expires_at <= now())
               or exists (select 1 from public.credit_reservations r
                           where r.organization_id = p_organization_id and r.status = 'open' and r.expires_at <= now())
               as stale
    ), verdict as (
      select p.*,
             case when p.stale then 'stale'
                  when v_organization.spend_limit is not null and p.usage + v_cost > v_organization.spend_limit then 'spend_limit'
                  when p.purchased + p.subscription < v_cost then 'insufficient'
                  else 'ok' end as verdict,
             jsonb_build_object(
               'reservation_id', v_reservation_id,
               'credits_reserved', v_cost,
               'expires_at', v_expires_at,
               'balance', jsonb_build_object(
                 'total', p.purchased + p.subscription - v_cost,
                 'purchased', p.purchased - p.purchased_used,
                 'subscription', p.subscription - p.subscription_used,
                 'reserved', p.reserved + v_cost),
               'idempotent_replay', false) as result
        from plan p
    ), moved as (
      update public.credit_lots l
         set remaining = l.remaining - t.credits
        from take t, verdict v
       where v.verdict = 'ok' and l.id = t.id
    ), reservation as (
      insert into public.credit_reservations (
        organization_id, id, event_key, quantity, unit_cost, credits, precedence, ttl_seconds, expires_at,
        idempotency_key, metadata, result, actor_id
      )
      select p_organization_id, v_reservation_id, p_event_key, p_quantity, v_organization.unit_cost, v_cost,
             v_organization.precedence, p_ttl_seconds, v_expires_at, p_idempotency_key, v_metadata, v.result, v_actor
        from verdict v
       where v.verdict = 'ok'
    ), ledger as (
      insert into public.credit_transactions (
        organization_id, kind, source, amount, balance_after, lot_id, event_key, description, actor_id, reservation_id
      )
      select p_organization_id, 'reservation', t.source, -t.credits,
             v.ledger_balance - (least(t.upto, v_cost))::integer, t.id, p_event_key, 'credits reserved', v_actor,
             v_reservation_id
        from take t, verdict v
       where v.verdict = 'ok'
       order by t.upto
    )
    select v.verdict, v.result, v.ledger_balance, v.purchased + v.subscription as available, v.held, v.usage
      into v_plan
      from verdict v;
    exit when v_plan.verdict <> 'stale';
    perform private.expire_organization_lots(p_organization_id);
  end loop;

  if v_plan.verdict = 'spend_limit' then
    raise exception 'spend limit reached: % credits would take this month''s usage (%) above the limit of %',
      v_cost, v_plan.usage, v_organization.spend_limit using errcode = 'PT429';
  end if;
  if v_plan.verdict = 'insufficient' then
    raise exception 'insufficient credits: % required, % available%', v_cost, v_plan.available,
      case when v_plan.held then ' (subscription credits are on hold until the past-due invoice is paid)' else '' end
      using errcode = 'PT402';
  end if;

  if v_organization.spend_limit is not null and v_plan.usage + v_cost >= v_organization.spend_limit then
    perform private.note_spend_limit_reached(p_organization_id, v_organization.spend_limit, v_plan.usage + v_cost);
  end if;
  if v_plan.ledger_balance - v_cost < v_organization.threshold then
    perform private.note_low_balance(p_organization_id, v_plan.ledger_balance, v_plan.ledger_balance - v_cost,
      v_organization.threshold);
  end if;
  return v_plan.result;
end;
$$;
comment on function public.reserve_credits(uuid, text, integer, text, integer, jsonb) is
  'Holds cost × quantity credits for p_ttl_seconds (1..86400) until settled or released; idempotent per key. Errors: PT402, PT429, 42501, PT404, 22023, PT409.';
revoke all on function public.reserve_credits(uuid, text, integer, text, integer, jsonb) from public, anon;
grant execute on function public.reserve_credits(uuid, text, integer, text, integer, jsonb) to authenticated, service_role;

/**
 * The organization a reservation belongs to, for a caller allowed to act on it: the service
 * role, or a member of that organization. Anything else, an unknown id included, is PT404,
 * so reservation ids of other organizations do not leak.
 */
create function private.reservation_organization(p_reservation_id uuid) returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_organization_id uuid;
begin
  select r.organization_id into v_organization_id from public.credit_reservations r where r.id = p_reservation_id;
  if v_organization_id is null
     or (not private.caller_is_service()
         and not exists (select 1 from public.organization_members m
                          where m.organization_id = v_organization_id and m.user_id = auth.uid())) then
    raise exception 'reservation not found' using errcode = 'PT404';
  end if;
  return v_organization_id;
end;
$$;
revoke all on function private.reservation_organization(uuid) from public;

/**
 * Closes a live reservation under its organization's lock: every credit it holds goes back
 * to the lot it came from (release rows), the settlement (p_quantity > 0) consumes unit cost ×
 * p_quantity of them in the order they were taken (a consumption and its ledger rows), and
 * what went back to a lot that expired meanwhile expires there. One statement plans and
 * writes it all, with the running balance on every ledger row. Returns {"consumption_id",
 * "credits_consumed", "purchased_used", "subscription_used", "balance"}.
 */
create function private.close_reservation(
  p_reservation public.credit_reservations,
  p_quantity integer,
  p_metadata jsonb,
  p_status public.credit_reservation_status
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_cost integer := p_reservation.unit_cost * p_quantity;
  v_consumption_id uuid := case when p_quantity > 0 then gen_random_uuid() end;
  v_description text := case when p_status = 'settled' then 'reserved credits returned for the settlement'
                             else 'reservation released: credits returned' end;
  v_actor uuid := auth.uid();
  v_done record;
begin
  loop
    with held as (
      select exists (
        select 1 from public.organization_subscriptions s
         where s.organization_id = p_reservation.organization_id
           and (s.status = 'unpaid' or (s.status = 'past_due' and s.grace_period_end <= now()))) as held
    ), holding as materialized (
      select t.lot_id, (-sum(t.amount))::integer as credits, min(t.id) as first_row
        from public.credit_transactions t
       where t.organization_id = p_reservation.organization_id and t.reservation_id = p_reservation.id
       group by t.lot_id
      having sum(t.amount) < 0
    ), lot as materialized (
      select l.id, l.source, l.remaining, l.expires_at is not null and l.expires_at <= now() as expired
        from public.credit_lots l
       where l.organization_id = p_reservation.organization_id
         and (l.remaining > 0 or l.id in (select h.lot_id from holding h))
    ), take as materialized (
      select h.lot_id, h.credits as held, l.source, l.expired,
             least(h.credits, greatest(v_cost - (sum(h.credits) over (order by h.first_row) - h.credits), 0))::integer as consumed,
             row_number() over (order by h.first_row) as k
        from holding h
        join lot l on l.id = h.lot_id
    ), movement as (
      select 1 as phase, t.k, t.lot_id, t.source, 'release'::public.credit_transaction_kind as kind, t.held as amount
        from take t
      union all
      select 2, t.k, t.lot_id, t.source, 'consumption'::public.credit_transaction_kind, -t.consumed
        from take t where t.consumed > 0
      union all
      select 3, t.k, t.lot_id, t.source, 'expiry'::public.credit_transaction_kind, -(t.held - t.consumed)
        from take t where t.expired and t.held > t.consumed
    ), state as (
      select exists (select 1 from lot where lot.remaining > 0 and lot.expired)
               or exists (select 1 from public.credit_reservations r
                           where r.organization_id = p_reservation.organization_id and r.status = 'open'
                             and r.expires_at <= now() and r.id <> p_reservation.id)
               as stale,
             (select coalesce(sum(lot.remaining), 0) from lot)::integer as ledger_balance,
             (select coalesce(sum(t.consumed) filter (where t.source = 'purchased'), 0) from take t)::integer as purchased_used,
             (select coalesce(sum(t.consumed) filter (where t.source = 'subscription'), 0) from take t)::integer as subscription_used,
             -- Spendable afterwards: the live lots, with what goes back to them.
             (select coalesce(sum(lot.remaining + coalesce(t.held - t.consumed, 0)), 0)
                from lot left join take t on t.lot_id = lot.id
               where not lot.expired and lot.source = 'purchased')::integer as purchased,
             (select coalesce(sum(lot.remaining + coalesce(t.held - t.consumed, 0)), 0)
                from lot left join take t on t.lot_id = lot.id
               where not lot.expired and lot.source = 'subscription' and not (select h.held from held h))::integer as subscription,
             (select coalesce(sum(r.credits), 0) from public.credit_reservations r
               where r.organization_id = p_reservation.organization_id and r.status = 'open'
                 and r.expires_at > now() and r.id <> p_reservation.id)::integer as reserved
    ), moved as (
      update public.credit_lots l
         set remaining = l.remaining + d.delta
        from (select m.lot_id, sum(m.amount)::integer as delta from movement m group by m.lot_id) d, state s
       where not s.stale and l.id = d.lot_id and d.delta <> 0
    ), consumption as (
      insert into public.credit_consumptions (
        id, organization_id, event_key, quantity, credits, purchased_used, subscription_used,
        precedence, metadata, result, actor_id, reservation_id
      )
      select v_consumption_id, p_reservation.organization_id, p_reservation.event_key, p_quantity, v_cost,
             s.purchased_used, s.subscription_used, p_reservation.precedence, p_reservation.metadata || p_metadata,
             jsonb_build_object('transaction_id', v_consumption_id, 'credits_consumed', v_cost,
               'purchased_used', s.purchased_used, 'subscription_used', s.subscription_used,
               'reservation_id', p_reservation.id),
             v_actor, p_reservation.id
        from state s
       where not s.stale and v_consumption_id is not null
    ), ledger as (
      insert into public.credit_transactions (
        organization_id, kind, source, amount, balance_after, lot_id, consumption_id, event_key, description,
        actor_id, reservation_id
      )
      select p_reservation.organization_id, m.kind, m.source, m.amount,
             s.ledger_balance + (sum(m.amount) over (order by m.phase, m.k))::integer, m.lot_id,
             case when m.kind = 'consumption' then v_consumption_id end, p_reservation.event_key,
             case m.kind when 'release' then v_description when 'expiry' then 'credits expired' else '' end,
             case when m.kind = 'expiry' then null else v_actor end,
             case when m.kind = 'release' then p_reservation.id end
        from movement m, state s
       where not s.stale
       order by m.phase, m.k
    ), closed as (
      update public.credit_reservations r
         set status = p_status, closed_at = now(),
             settled_quantity = case when p_status = 'settled' then p_quantity end,
             credits_consumed = case when p_status = 'settled' then v_cost end,
             consumption_id = v_consumption_id
        from state s
       where not s.stale and r.organization_id = p_reservation.organization_id and r.id = p_reservation.id
    )
    select s.* into v_done from state s;
    exit when not v_done.stale;
    perform private.expire_organization_lots(p_reservation.organization_id);
  end loop;

  return jsonb_build_object(
    'consumption_id', v_consumption_id,
    'credits_consumed', v_cost,
    'purchased_used', v_done.purchased_used,
    'subscription_used', v_done.subscription_used,
    'balance', jsonb_build_object('total', v_done.purchased + v_done.subscription, 'purchased', v_done.purchased,
      'subscription', v_done.subscription, 'reserved', v_done.reserved)
  );
end;
$$;
revoke all on function private.close_reservation(public.credit_reservations, integer, jsonb, public.credit_reservation_status) from public;

/**
 * Takes the lock of the reservation's organization and returns the reservation as it is
 * now, if it is still live: PT409 when settled or released, PT410 when past its expiry
 * (written down or not).
 */
create function private.lock_live_reservation(p_organization_id uuid, p_reservation_id uuid)
returns public.credit_reservations
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_reservation public.credit_reservations;
begin
  perform 1 from public.organizations o where o.id = p_organization_id for no key update;
  select * into v_reservation from public.credit_reservations r
   where r.organization_id = p_organization_id and r.id = p_reservation_id;
  if v_reservation.status = 'expired' or (v_reservation.status = 'open' and v_reservation.expires_at <= now()) then
    raise exception 'reservation % expired at %', p_reservation_id, v_reservation.expires_at using errcode = 'PT410';
  end if;
  if v_reservation.status <> 'open' then
    raise exception 'reservation % is already %', p_reservation_id, v_reservation.status using errcode = 'PT409';
  end if;
  return v_reservation;
end;
$$;
revoke all on function private.lock_live_reservation(uuid, uuid) from public;

/**
 * Settles a live reservation: consumes unit cost × p_quantity (null: the reserved quantity)
 * from the credits it holds, in the order it took them, and releases the rest to their lots.
 * A live reservation settles in full even if its credits' lots expired meanwhile (their
 * unconsumed rest expires). The settlement is a consumption (credit_consumptions, ledger,
 * usage, spend limit). Errors: PT404 unknown (or another organization's), PT409 already
 * settled or released, PT410 expired, 22023 quantity outside 0..reserved or bad metadata.
 */
create function public.settle_reservation(
  p_reservation_id uuid,
  p_quantity integer default null,
  p_metadata jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
set plan_cache_mode = 'force_generic_plan'
as $$
declare
  v_metadata jsonb := coalesce(p_metadata, '{}'::jsonb);
  v_organization_id uuid;
  v_reservation public.credit_reservations;
  v_limit integer;
  v_quantity integer;
  v_closed jsonb;
begin
  if p_reservation_id is null then
    raise exception 'reservation id is required' using errcode = '22023';
  end if;
  if p_quantity is not null and p_quantity < 0 then
    raise exception 'quantity must be between 0 and the reserved quantity' using errcode = '22023';
  end if;
  if jsonb_typeof(v_metadata) <> 'object' or octet_length(v_metadata::text) > 16384 then
    raise exception 'metadata must be a JSON object of at most 16 KB' using errcode = '22023';
  end if;

  v_organization_id := private.reservation_organization(p_reservation_id);
  v_reservation := private.lock_live_reservation(v_organization_id, p_reservation_id);
  v_quantity := coalesce(p_quantity, v_reservation.quantity);
  if v_quantity > v_reservation.quantity then
    raise exception 'quantity % is more than the % reserved', v_quantity, v_reservation.quantity using errcode = '22023';
  end if;

  v_closed := private.close_reservation(v_reservation, v_quantity, v_metadata, 'settled');

  select o.monthly_spend_limit into v_limit from public.organizations o where o.id = v_organization_id;
  if v_limit is not null then
    perform private.record_spend(v_organization_id, (v_closed ->> 'credits_consumed')::integer, v_limit);
  end if;
  return jsonb_build_object(
    'reservation_id', p_reservation_id,
    'transaction_id', v_closed -> 'consumption_id',
    'credits_consumed', v_closed -> 'credits_consumed',
    'credits_released', v_reservation.credits - (v_closed ->> 'credits_consumed')::integer,
    'purchased_used', v_closed -> 'purchased_used',
    'subscription_used', v_closed -> 'subscription_used',
    'balance', v_closed -> 'balance'
  );
end;
$$;
comment on function public.settle_reservation(uuid, integer, jsonb) is
  'Consumes unit cost × p_quantity (null: all reserved) of a live reservation and releases the rest. Errors: PT404, PT409, PT410, 22023, 42501.';
revoke all on function public.settle_reservation(uuid, integer, jsonb) from public, anon;
grant execute on function public.settle_reservation(uuid, integer, jsonb) to authenticated, service_role;

/**
 * Releases a live reservation: every credit it holds goes back to the lot it came from (and
 * expires there if that lot expired meanwhile). Errors: PT404 unknown (or another
 * organization's), PT409 already settled or released, PT410 expired.
 */
create function public.release_reservation(p_reservation_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
set plan_cache_mode = 'force_generic_plan'
as $$
declare
  v_organization_id uuid;
  v_reservation public.credit_reservations;
  v_closed jsonb;
begin
  if p_reservation_id is null then
    raise exception 'reservation id is required' using errcode = '22023';
  end if;
  v_organization_id := private.reservation_organization(p_reservation_id);
  v_reservation := private.lock_live_reservation(v_organization_id, p_reservation_id);
  v_closed := private.close_reservation(v_reservation, 0, '{}', 'released');
  return jsonb_build_object(
    'reservation_id', p_reservation_id,
    'credits_released', v_reservation.credits,
    'balance', v_closed -> 'balance'
  );
end;
$$;
comment on function public.release_reservation(uuid) is
  'Returns a live reservation''s credits to their lots. Errors: PT404, PT409, PT410.';
revoke all on function public.release_reservation(uuid) from public, anon;
grant execute on function public.release_reservation(uuid) to authenticated, service_role;

/**
 * Writes down every open reservation, in every organization, past its expiry (its credits go
 * back to their lots). Service role only; run by the expire_reservations job every minute.
 * Reads never depend on it. Returns how many reservations were written down.
 */
create function public.expire_reservations() returns integer
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
    select distinct r.organization_id
      from public.credit_reservations r
     where r.status = 'open' and r.expires_at <= now()
     order by 1
  loop
    perform private.lock_organization(v_organization_id);
    v_count := v_count + private.write_down_expired_reservations(v_organization_id);
    perform private.expire_organization_lots(v_organization_id);
  end loop;
  return v_count;
end;
$$;
comment on function public.expire_reservations() is
  'Service role: writes down reservations past their expiry (credits back to their lots); returns how many.';
revoke all on function public.expire_reservations() from public, anon, authenticated;
grant execute on function public.expire_reservations() to service_role;

-- ============================================================================
-- The job
-- ============================================================================

insert into private.scheduled_jobs (name, schedule, description, kind, sql_command, function_path) values
  ('expire_reservations', '* * * * *',
   'Writes down reservations past their expiry: their credits go back to their lots (within a minute of the expiry).',
   'sql', 'select public.expire_reservations()', null);

do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform private.schedule_jobs_on_cron();
  end if;
end;
$$;
