-- Operators: the SaaS's own staff, who run billing for every organization from the operator
-- console. They are users listed in public.billing_operators, which only the service role
-- changes. Operators reach data only through the security definer functions below, each of
-- which checks the caller first (42501 for anyone who is neither an operator nor the service
-- role); members' RLS is unchanged, so being an operator grants nothing through the tables.
--
-- Also here: operator alerts (raised on the platform, not on one organization: drift from
-- Stripe found by the daily reconciliation), manual credit adjustments with their reason, the
-- console's read functions, and the daily reconciliation job.

-- ============================================================================
-- Tables
-- ============================================================================

create table public.billing_operators (
  user_id uuid primary key references auth.users (id) on delete cascade,
  created_at timestamptz not null default now()
);
alter table public.billing_operators enable row level security;

comment on table public.billing_operators is
  'Users who may use the operator console (every organization''s billing). Written only by add_billing_operator (service role). No policies: nobody reads it through the API.';

create type public.operator_alert_kind as enum ('reconciliation_drift');

create table public.billing_operator_alerts (
  id uuid primary key default gen_random_uuid(),
  kind public.operator_alert_kind not null,
  severity public.billing_alert_severity not null,
  title text not null check (char_length(title) between 1 and 200),
  message text not null default '',
  data jsonb not null default '{}' check (jsonb_typeof(data) = 'object'),
  dedupe_key text,
  created_at timestamptz not null default now(),
  dismissed_at timestamptz,
  dismissed_by uuid references auth.users (id) on delete set null
);
alter table public.billing_operator_alerts enable row level security;

comment on table public.billing_operator_alerts is
  'Alerts for operators about the platform (e.g. drift between our records and Stripe). Read through operator_alerts().';
comment on column public.billing_operator_alerts.dedupe_key is
  'At most one open alert per key: a drift that persists from one daily run to the next stays one alert.';
comment on column public.billing_operator_alerts.dismissed_at is 'When an operator dismissed it; null while open. No default on purpose.';

create unique index billing_operator_alerts_open_dedupe_key on public.billing_operator_alerts (dedupe_key)
  where dedupe_key is not null and dismissed_at is null;
create index billing_operator_alerts_created_idx on public.billing_operator_alerts (created_at desc);
create index billing_operator_alerts_dismissed_by_idx on public.billing_operator_alerts (dismissed_by)
  where dismissed_by is not null;

-- No policies on either table: members and strangers read nothing; operators use the functions.
revoke all on public.billing_operators, public.billing_operator_alerts from anon, authenticated;

-- The console's "this month's consumption" and "last payment" per organization.
create index billing_history_organization_occurred_idx on public.billing_history (organization_id, occurred_at desc)
  where kind <> 'refund';

-- ============================================================================
-- Helpers
-- ============================================================================

/**
 * True when the signed-in caller is listed in billing_operators. Never true for anon.
 */
create function private.caller_is_operator() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (select 1 from public.billing_operators o where o.user_id = (select auth.uid()));
$$;
revoke all on function private.caller_is_operator() from public;

/**
 * Raises 42501 unless the caller is an operator or the service role. Every operator function
 * calls it first, before looking at its arguments, so nothing about the data leaks to others.
 */
create function private.require_operator() returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if not (private.caller_is_service() or private.caller_is_operator()) then
    raise exception 'only billing operators may call this function' using errcode = '42501';
  end if;
end;
$$;
revoke all on function private.require_operator() from public;

/** 22023 unless the period has a start before its end. */
create function private.require_period(p_from timestamptz, p_to timestamptz) returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_from is null or p_to is null or p_to <= p_from then
    raise exception 'the period needs p_from before p_to' using errcode = '22023';
  end if;
end;
$$;
revoke all on function private.require_period(timestamptz, timestamptz) from public;

/** 22023 unless 1 <= p_limit <= p_max and p_offset >= 0. */
create function private.require_page(p_limit integer, p_offset integer, p_max integer) returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_limit is null or p_limit not between 1 and p_max or p_offset is null or p_offset < 0 then
    raise exception 'limit must be 1 to % and offset zero or more', p_max using errcode = '22023';
  end if;
end;
$$;
revoke all on function private.require_page(integer, integer, integer) from public;

-- ============================================================================
-- Operators
-- ============================================================================

/**
 * Makes a user an operator. Service role only (operators cannot appoint operators). Adding
 * an operator twice changes nothing; an unknown user is PT404.
 */
create function public.add_billing_operator(p_user_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  if p_user_id is null or not exists (select 1 from auth.users u where u.id = p_user_id) then
    raise exception 'user not found' using errcode = 'PT404';
  end if;
  insert into public.billing_operators (user_id) values (p_user_id) on conflict (user_id) do nothing;
end;
$$;
comment on function public.add_billing_operator(uuid) is 'Service role: makes a user a billing operator (idempotent).';
revoke all on function public.add_billing_operator(uuid) from public, anon, authenticated;
grant execute on function public.add_billing_operator(uuid) to service_role;

/**
 * Whether the caller may use the operator console: a listed operator, or the service role.
 * The dashboard asks it before showing the console; it never raises.
 */
create function public.is_billing_operator() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select private.caller_is_service() or private.caller_is_operator();
$$;
comment on function public.is_billing_operator() is 'True when the caller is a billing operator (or the service role).';
revoke all on function public.is_billing_operator() from public, anon;
grant execute on function public.is_billing_operator() to authenticated, service_role;

-- ============================================================================
-- Overview
-- ============================================================================

/**
 * Credits owed to customers now, across every organization: what live lots hold, plus what
 * open reservations hold. A reservation moves its credits out of their lots, yet they are
 * still owed: a live reservation's credits are only held (a settlement consumes them, a
 * release returns them), and those of a reservation past its expiry are spendable again
 * where their lot is still live (as credit_balance counts them before the write-down).
 */
create function private.outstanding_credits() returns bigint
language sql
stable
security definer
set search_path = ''
as $$
  select (select coalesce(sum(l.remaining), 0)
            from public.credit_lots l
           where l.remaining > 0 and (l.expires_at is null or l.expires_at > now()))
       + (select coalesce(sum(r.credits), 0)
            from public.credit_reservations r
           where r.status = 'open' and r.expires_at > now())
       + (select coalesce(-sum(t.amount), 0)
            from public.credit_reservations r
            join public.credit_transactions t on t.organization_id = r.organization_id and t.reservation_id = r.id
            join public.credit_lots l on l.organization_id = t.organization_id and l.id = t.lot_id
           where r.status = 'open' and r.expires_at <= now()
             and (l.expires_at is null or l.expires_at > now()))::bigint;
$$;
revoke all on function private.outstanding_credits() from public;

/**
 * The business for a period, across every organization:
 *   mrr: active and past-due subscriptions at their monthly equivalent (an annual price / 12),
 *        in minor units, per currency (today's figure, whatever the period);
 *   subscriptions: how many are active, trialing, past due and unpaid now; how many ended
 *        (canceled, expired) and how many started in the period;
 *   trials: trials started in the period and how many of those are paying now (extra to the contract);
 *   payment_success_rate: paid / (paid + failed) over subscription invoices and credit
 *        purchases that happened in the period (null when there were none);
 *   credits: granted (grants and positive adjustments), consumed and expired (breakage) in
 *        the period, and outstanding (owed now in every organization: spendable or held by a
 *        reservation).
 */
create function public.operator_overview(p_from timestamptz, p_to timestamptz) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  perform private.require_period(p_from, p_to);
  return jsonb_build_object(
    'mrr', coalesce((
      select jsonb_agg(jsonb_build_object('currency', m.currency, 'amount', m.amount) order by m.currency)
        from (select p.currency,
                     round(sum(case s.billing_interval when 'year' then p.annual_unit_amount / 12.0
                                                       else p.monthly_unit_amount end))::bigint as amount
                from public.organization_subscriptions s
                join public.subscription_plans p on p.id = s.plan_id
               where s.status in ('active', 'past_due')
               group by p.currency) m), '[]'::jsonb),
    'subscriptions', (
      select jsonb_build_object(
        'active', count(*) filter (where s.status = 'active'),
        'trialing', count(*) filter (where s.status = 'trialing'),
        'past_due', count(*) filter (where s.status = 'past_due'),
        'unpaid', count(*) filter (where s.status = 'unpaid'),
        'canceled_in_period', count(*) filter (
          where s.status in ('canceled', 'expired', 'incomplete_expired')
            and coalesce(s.ended_at, s.canceled_at, s.updated_at) >= p_from
            and coalesce(s.ended_at, s.canceled_at, s.updated_at) < p_to),
        'new_in_period', count(*) filter (where s.created_at >= p_from and s.created_at < p_to))
        from public.organization_subscriptions s),
    'trials', (
      select jsonb_build_object(
        'started_in_period', count(*),
        'converted', count(*) filter (where s.status in ('active', 'past_due')))
        from public.subscription_trials t
        left join public.organization_subscriptions s on s.stripe_subscription_id = t.stripe_subscription_id
       where t.trial_start >= p_from and t.trial_start < p_to),
    'payment_success_rate', (
      select case when count(*) filter (where h.status not in ('open', 'void')) = 0 then null
                  else round(count(*) filter (where h.status in ('paid', 'partially_refunded', 'refunded'))::numeric
                             / count(*) filter (where h.status not in ('open', 'void')), 4) end
        from public.billing_history h
       where h.kind <> 'refund' and h.occurred_at >= p_from and h.occurred_at < p_to),
    'credits', (
      select jsonb_build_object(
        'granted', coalesce(sum(t.amount) filter (where t.kind = 'grant' or (t.kind = 'adjustment' and t.amount > 0)), 0),
        'consumed', coalesce(-sum(t.amount) filter (where t.kind = 'consumption'), 0),
        'expired', coalesce(-sum(t.amount) filter (where t.kind = 'expiry'), 0),
        'outstanding', private.outstanding_credits())
        from public.credit_transactions t
       where t.created_at >= p_from and t.created_at < p_to)
  );
end;
$$;
comment on function public.operator_overview(timestamptz, timestamptz) is
  'Operators and the service role: MRR per currency, subscriptions by status, new and churned in the period, payment success rate, credits granted / consumed / expired / outstanding.';
revoke all on function public.operator_overview(timestamptz, timestamptz) from public, anon;
grant execute on function public.operator_overview(timestamptz, timestamptz) to authenticated, service_role;

/**
 * MRR per currency at the end of each UTC day of the period (at most 400 days), in minor
 * units: a subscription counts at its monthly equivalent from the end of its trial (or its
 * start) until it ended; a live one only while active or past due, as operator_overview's
 * MRR. Derived from the subscriptions as they are now, so a plan changed within the period is
 * shown at its current price throughout (no history of plan changes is kept).
 */
create function public.operator_mrr_trend(p_from timestamptz, p_to timestamptz)
returns table (day date, currency text, amount bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  perform private.require_period(p_from, p_to);
  if p_to - p_from > interval '400 days' then
    raise exception 'the MRR trend covers at most 400 days' using errcode = '22023';
  end if;
  return query
  with days as (
    select d::date as day, least((d + interval '1 day') at time zone 'utc', now()) as at
      from pg_catalog.generate_series(date_trunc('day', p_from at time zone 'utc'),
                                      (p_to at time zone 'utc') - interval '1 microsecond', interval '1 day') d
  ), paying as (
    select p.currency,
           case s.billing_interval when 'year' then p.annual_unit_amount / 12.0 else p.monthly_unit_amount end as monthly,
           greatest(s.created_at, coalesce(s.trial_end, s.created_at)) as paying_from,
           case when s.status in ('canceled', 'expired') then coalesce(s.ended_at, s.canceled_at, s.updated_at) end as paying_until
      from public.organization_subscriptions s
      join public.subscription_plans p on p.id = s.plan_id
     where s.status in ('active', 'past_due', 'canceled', 'expired')
  ), currencies as (
    select distinct py.currency from paying py
  )
  select d.day, c.currency,
         round(coalesce(sum(py.monthly), 0))::bigint
    from days d
   cross join currencies c
    left join paying py on py.currency = c.currency and py.paying_from <= d.at
                       and (py.paying_until is null or py.paying_until > d.at)
   group by d.day, c.currency
   order by d.day, c.currency;
end;
$$;
comment on function public.operator_mrr_trend(timestamptz, timestamptz) is
  'Operators and the service role: MRR per currency at the end of each UTC day of the period (subscriptions as they are now).';
revoke all on function public.operator_mrr_trend(timestamptz, timestamptz) from public, anon;
grant execute on function public.operator_mrr_trend(timestamptz, timestamptz) to authenticated, service_role;

/**
 * Credits consumed per UTC day and event in the period (the console's usage chart).
 */
create function public.operator_consumption(p_from timestamptz, p_to timestamptz)
returns table (day date, event_key text, events bigint, credits bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  perform private.require_period(p_from, p_to);
  return query
  select (c.created_at at time zone 'utc')::date, c.event_key, count(*), sum(c.credits)::bigint
    from public.credit_consumptions c
   where c.created_at >= p_from and c.created_at < p_to
   group by 1, 2
   order by 1, 2;
end;
$$;
comment on function public.operator_consumption(timestamptz, timestamptz) is
  'Operators and the service role: credits consumed per UTC day and event in the period.';
revoke all on function public.operator_consumption(timestamptz, timestamptz) from public, anon;
grant execute on function public.operator_consumption(timestamptz, timestamptz) to authenticated, service_role;

/**
 * The organizations that consumed the most credits in the period, most first.
 */
create function public.operator_top_consumers(p_from timestamptz, p_to timestamptz, p_limit integer default 10)
returns table (organization_id uuid, name text, events bigint, credits bigint)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  perform private.require_period(p_from, p_to);
  perform private.require_page(p_limit, 0, 100);
  return query
  select o.id, o.name, u.events, u.credits
    from (select c.organization_id, count(*) as events, sum(c.credits)::bigint as credits
            from public.credit_consumptions c
           where c.created_at >= p_from and c.created_at < p_to
           group by c.organization_id) u
    join public.organizations o on o.id = u.organization_id
   order by u.credits desc, o.name, o.id
   limit p_limit;
end;
$$;
comment on function public.operator_top_consumers(timestamptz, timestamptz, integer) is
  'Operators and the service role: the top p_limit (1..100) organizations by credits consumed in the period.';
revoke all on function public.operator_top_consumers(timestamptz, timestamptz, integer) from public, anon;
grant execute on function public.operator_top_consumers(timestamptz, timestamptz, integer) to authenticated, service_role;

-- ============================================================================
-- Organizations
-- ============================================================================

/**
 * One page of organizations with what an operator scans for: plan, subscription status,
 * spendable balance, credits consumed this calendar month (UTC) and the last payment.
 * p_search matches the name (case-insensitive), the organization id or the Stripe customer
 * id. p_sort: name, created_at, status, balance, consumed_this_month, last_payment_at.
 * total_count is the number of matching organizations (the same on every row).
 */
create function public.operator_organizations(
  p_search text default null,
  p_sort text default 'name',
  p_descending boolean default false,
  p_limit integer default 25,
  p_offset integer default 0
) returns table (
  organization_id uuid,
  name text,
  stripe_customer_id text,
  created_at timestamptz,
  plan_code text,
  plan_name text,
  billing_interval text,
  status text,
  balance bigint,
  consumed_this_month bigint,
  last_payment_at timestamptz,
  last_payment_status text,
  last_payment_amount bigint,
  last_payment_currency text,
  total_count bigint
)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_search text := nullif(btrim(coalesce(p_search, '')), '');
  v_month_start timestamptz := date_trunc('month', now() at time zone 'utc') at time zone 'utc';
begin
  perform private.require_operator();
  perform private.require_page(p_limit, p_offset, 200);
  if p_sort is null or p_sort not in ('name', 'created_at', 'status', 'balance', 'consumed_this_month', 'last_payment_at') then
    raise exception 'sort must be name, created_at, status, balance, consumed_this_month or last_payment_at'
      using errcode = '22023';
  end if;
  if char_length(v_search) > 200 then
    raise exception 'search must be at most 200 characters' using errcode = '22023';
  end if;
  return query
  with matching as (
    select o.*
      from public.organizations o
     where v_search is null
        or o.name ilike '%' || replace(replace(replace(v_search, '\', '\\'), '%', '\%'), '_', '\_') || '%'
        or o.id::text = lower(v_search)
        or o.stripe_customer_id = v_search
  ), listed as (
    select m.id, m.name, m.stripe_customer_id, m.created_at,
           sub.plan_code, sub.plan_name, sub.billing_interval, sub.status,
           coalesce((select sum(l.remaining) from public.credit_lots l
                      where l.organization_id = m.id and l.remaining > 0
                        and (l.expires_at is null or l.expires_at > now())), 0)::bigint as balance,
           coalesce((select sum(c.credits) from public.credit_consumptions c
                      where c.organization_id = m.id and c.created_at >= v_month_start), 0)::bigint as consumed_this_month,
           pay.occurred_at, pay.status as pay_status, pay.amount, pay.currency
      from matching m
      left join lateral (
        select p.code as plan_code, p.name as plan_name, s.billing_interval::text, s.status::text
          from public.organization_subscriptions s
          left join public.subscription_plans p on p.id = s.plan_id
         where s.organization_id = m.id
         order by (s.status in ('trialing', 'active', 'past_due', 'unpaid', 'incomplete', 'paused')) desc, s.created_at desc
         limit 1) sub on true
      left join lateral (
        select h.occurred_at, h.status::text, h.amount, h.currency
          from public.billing_history h
         where h.organization_id = m.id and h.kind <> 'refund' and h.status in ('paid', 'failed', 'partially_refunded', 'refunded')
         order by h.occurred_at desc
         limit 1) pay on true
  )
  select r.id, r.name, r.stripe_customer_id, r.created_at, r.plan_code, r.plan_name, r.billing_interval, r.status,
         r.balance, r.consumed_this_month, r.occurred_at, r.pay_status, r.amount, r.currency,
         count(*) over ()
    from listed r
   order by
     case when not p_descending then
       case p_sort when 'name' then lower(r.name) when 'status' then coalesce(r.status, '') end end asc nulls last,
     case when p_descending then
       case p_sort when 'name' then lower(r.name) when 'status' then coalesce(r.status, '') end end desc nulls last,
     case when not p_descending then
       case p_sort when 'balance' then r.balance when 'consumed_this_month' then r.consumed_this_month end end asc nulls last,
     case when p_descending then
       case p_sort when 'balance' then r.balance when 'consumed_this_month' then r.consumed_this_month end end desc nulls last,
     case when not p_descending then
       case p_sort when 'created_at' then r.created_at when 'last_payment_at' then r.occurred_at end end asc nulls last,
     case when p_descending then
       case p_sort when 'created_at' then r.created_at when 'last_payment_at' then r.occurred_at end end desc nulls last,
     r.name, r.id
   limit p_limit offset p_offset;
end;
$$;
comment on function public.operator_organizations(text, text, boolean, integer, integer) is
  'Operators and the service role: a page of organizations (search by name, id or Stripe customer; sort by name, created_at, status, balance, consumed_this_month, last_payment_at).';
revoke all on function public.operator_organizations(text, text, boolean, integer, integer) from public, anon;
grant execute on function public.operator_organizations(text, text, boolean, integer, integer) to authenticated, service_role;

/**
 * The spend-limit figures get_spend_limit answers members ({"monthly_credits", "month_start",
 * "consumed_this_month", "reserved", "remaining"}), for any caller that has checked who is
 * asking; null for an unknown organization. Moved here from get_spend_limit (redefined below
 * over it) so the operator's page shows exactly what the members see.
 */
create function private.spend_limit_figures(p_organization_id uuid) returns jsonb
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
  select o.monthly_spend_limit into v_limit from public.organizations o where o.id = p_organization_id;
  if not found then
    return null;
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
revoke all on function private.spend_limit_figures(uuid) from public;

/**
 * The organization's monthly spend limit and this month's usage against it, for the
 * dashboard: {"monthly_credits": int|null, "month_start": date, "consumed_this_month": int,
 * "reserved": int, "remaining": int|null}. Any member (and the service role).
 */
create or replace function public.get_spend_limit(p_organization_id uuid) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_figures jsonb;
begin
  perform private.require_organization_role(p_organization_id, 'member');
  v_figures := private.spend_limit_figures(p_organization_id);
  if v_figures is null then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  return v_figures;
end;
$$;

/**
 * Everything about one organization an operator needs on its page: the organization, its
 * subscriptions (newest first), balance, lots, the latest 200 ledger rows, billing history,
 * alerts, notifications (latest 100), members, and how it spends: its reservations (every
 * live one, soonest to expire first, and the latest 10 closed ones; an open one past its
 * expiry is closed already and shows as expired), its spend limit (get_spend_limit's
 * figures), its auto top-up setting and card on file (null when none) and its latest 20
 * top-ups with their outcome. PT404 for an unknown organization.
 */
create function public.operator_organization(p_organization_id uuid) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_organization jsonb;
begin
  perform private.require_operator();
  select jsonb_build_object('id', o.id, 'name', o.name, 'stripe_customer_id', o.stripe_customer_id,
           'credit_precedence', o.credit_precedence, 'low_balance_threshold', o.low_balance_threshold,
           'created_at', o.created_at)
    into v_organization
    from public.organizations o where o.id = p_organization_id;
  if v_organization is null then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  return jsonb_build_object(
    'organization', v_organization,
    'subscriptions', coalesce((
      select jsonb_agg(to_jsonb(s) || jsonb_build_object('plan_code', p.code, 'plan_name', p.name)
                       order by s.created_at desc)
        from public.organization_subscriptions s
        left join public.subscription_plans p on p.id = s.plan_id
       where s.organization_id = p_organization_id), '[]'::jsonb),
    'balance', private.credit_balance(p_organization_id),
    'lots', coalesce((
      select jsonb_agg(to_jsonb(l) order by l.id desc)
        from public.credit_lots l where l.organization_id = p_organization_id), '[]'::jsonb),
    'ledger', coalesce((
      select jsonb_agg(to_jsonb(t) || jsonb_build_object('actor_email', u.email) order by t.created_at desc, t.id desc)
        from (select * from public.credit_transactions t
               where t.organization_id = p_organization_id
               order by t.created_at desc, t.id desc limit 200) t
        left join auth.users u on u.id = t.actor_id), '[]'::jsonb),
    'history', coalesce((
      select jsonb_agg(to_jsonb(h) order by h.occurred_at desc, h.id desc)
        from public.billing_history h where h.organization_id = p_organization_id), '[]'::jsonb),
    'alerts', coalesce((
      select jsonb_agg(to_jsonb(a) order by a.created_at desc)
        from public.billing_alerts a where a.organization_id = p_organization_id), '[]'::jsonb),
    'notifications', coalesce((
      select jsonb_agg(jsonb_build_object('id', n.id, 'type', n.type, 'status', n.status, 'attempts', n.attempts,
                         'last_error', n.last_error, 'created_at', n.created_at, 'delivered_at', n.delivered_at)
                       order by n.created_at desc)
        from (select * from public.notifications n where n.organization_id = p_organization_id
               order by n.created_at desc limit 100) n), '[]'::jsonb),
    'members', coalesce((
      select jsonb_agg(jsonb_build_object('user_id', m.user_id, 'email', u.email, 'role', m.role) order by m.role, u.email)
        from public.organization_members m
        join auth.users u on u.id = m.user_id
       where m.organization_id = p_organization_id), '[]'::jsonb),
    'reservations', jsonb_build_object(
      'live', coalesce((
        select jsonb_agg(jsonb_build_object('id', r.id, 'event_key', r.event_key, 'quantity', r.quantity,
                           'credits', r.credits, 'expires_at', r.expires_at, 'created_at', r.created_at)
                         order by r.expires_at, r.id)
          from public.credit_reservations r
         where r.organization_id = p_organization_id and r.status = 'open' and r.expires_at > now()), '[]'::jsonb),
      'recent_closed', coalesce((
        select jsonb_agg(jsonb_build_object('id', r.id, 'event_key', r.event_key, 'quantity', r.quantity,
                           'credits', r.credits, 'status', r.status, 'credits_consumed', r.credits_consumed,
                           'expires_at', r.expires_at, 'created_at', r.created_at, 'closed_at', r.closed_at)
                         order by r.closed_at desc, r.id)
          from (select r.id, r.event_key, r.quantity, r.credits, r.credits_consumed, r.expires_at, r.created_at,
                       case r.status when 'open' then 'expired'::public.credit_reservation_status else r.status end as status,
                       coalesce(r.closed_at, r.expires_at) as closed_at
                  from public.credit_reservations r
                 where r.organization_id = p_organization_id and (r.status <> 'open' or r.expires_at <= now())
                 order by coalesce(r.closed_at, r.expires_at) desc, r.id
                 limit 10) r), '[]'::jsonb)),
    'spend_limit', private.spend_limit_figures(p_organization_id),
    'auto_top_up', (
      select jsonb_build_object('enabled', a.enabled, 'product_code', p.code, 'product_name', p.name,
               'product_credits', p.credits, 'threshold', a.threshold, 'monthly_limit', a.monthly_limit,
               'consecutive_failures', a.consecutive_failures, 'disabled_reason', a.disabled_reason,
               'updated_at', a.updated_at)
        from public.auto_top_up_settings a
        join public.credit_products p on p.id = a.credit_product_id
       where a.organization_id = p_organization_id),
    'card_on_file', (
      select jsonb_build_object('brand', c.brand, 'last4', c.last4, 'exp_month', c.exp_month, 'exp_year', c.exp_year,
               'observed_at', c.observed_at)
        from public.cards_on_file c
       where c.organization_id = p_organization_id and c.stripe_payment_method_id is not null),
    'top_ups', coalesce((
      select jsonb_agg(jsonb_build_object('id', t.id, 'credits', t.credits, 'amount', t.amount, 'currency', t.currency,
                         'status', t.status, 'failure_code', t.failure_code, 'failure_message', t.failure_message,
                         'stripe_payment_intent_id', t.stripe_payment_intent_id, 'created_at', t.created_at,
                         'finished_at', t.finished_at)
                       order by t.created_at desc, t.id)
        from (select * from public.auto_top_ups t where t.organization_id = p_organization_id
               order by t.created_at desc, t.id limit 20) t), '[]'::jsonb)
  );
end;
$$;
comment on function public.operator_organization(uuid) is
  'Operators and the service role: one organization''s subscriptions, balance, lots, ledger, history, alerts, notifications, members, reservations, spend limit, auto top-up setting, card on file and top-ups.';
revoke all on function public.operator_organization(uuid) from public, anon;
grant execute on function public.operator_organization(uuid) to authenticated, service_role;

-- ============================================================================
-- Manual adjustments
-- ============================================================================

/**
 * A manual credit adjustment by an operator, with the reason it was made. A positive amount
 * grants a new lot (purchased: never expires, p_expires_at null; subscription: p_expires_at
 * in the future); a negative amount debits that source's spendable credits (soonest expiry
 * first), never below zero (PT402). Each ledger row is of kind adjustment, its description
 * the reason and its actor the operator (null for the service role). 22023 for a zero
 * amount, an unknown source, a blank reason or a bad expiry; PT404 for an unknown organization.
 */
create function public.adjust_credits(
  p_organization_id uuid,
  p_amount integer,
  p_source text,
  p_reason text,
  p_expires_at timestamptz default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_reason text := btrim(p_reason);
  v_lot record;
  v_lot_id bigint;
  v_needed integer;
  v_take integer;
  v_transaction_ids bigint[] := '{}';
begin
  perform private.require_operator();
  if p_organization_id is null then
    raise exception 'organization id is required' using errcode = '22023';
  end if;
  if p_amount is null or p_amount = 0 then
    raise exception 'amount must be a non-zero integer (positive grants, negative debits)' using errcode = '22023';
  end if;
  if p_source is null or p_source not in ('purchased', 'subscription') then
    raise exception 'source must be purchased or subscription' using errcode = '22023';
  end if;
  if v_reason is null or v_reason = '' or char_length(v_reason) > 500 or v_reason ~ '[[:cntrl:]]' then
    raise exception 'a reason of 1 to 500 printable characters is required' using errcode = '22023';
  end if;
  if p_amount > 0 and p_source = 'purchased' and p_expires_at is not null then
    raise exception 'purchased credits never expire: p_expires_at must be null' using errcode = '22023';
  end if;
  if p_amount > 0 and p_source = 'subscription' and (p_expires_at is null or p_expires_at <= now()) then
    raise exception 'subscription credits need an expiry in the future' using errcode = '22023';
  end if;
  if p_amount < 0 and p_expires_at is not null then
    raise exception 'a debit takes no expiry' using errcode = '22023';
  end if;

  perform private.lock_organization(p_organization_id);
  perform private.expire_organization_lots(p_organization_id);

  if p_amount > 0 then
    insert into public.credit_lots (organization_id, source, granted, remaining, expires_at)
    values (p_organization_id, p_source::public.credit_source, p_amount, 0, p_expires_at)
    returning id into v_lot_id;
    v_transaction_ids := v_transaction_ids
      || private.move_credits(v_lot_id, p_amount, 'adjustment', p_description => v_reason);
  else
    v_needed := -p_amount;
    if v_needed > (select coalesce(sum(l.remaining), 0) from public.credit_lots l
                    where l.organization_id = p_organization_id and l.source = p_source::public.credit_source
                      and l.remaining > 0) then
      raise exception 'insufficient % credits for a debit of %', p_source, v_needed using errcode = 'PT402';
    end if;
    for v_lot in
      select l.id, l.remaining
        from public.credit_lots l
       where l.organization_id = p_organization_id
         and l.source = p_source::public.credit_source
         and l.remaining > 0
       order by l.expires_at nulls last, l.id
         for update
    loop
      exit when v_needed = 0;
      v_take := least(v_needed, v_lot.remaining);
      v_needed := v_needed - v_take;
      v_transaction_ids := v_transaction_ids
        || private.move_credits(v_lot.id, -v_take, 'adjustment', p_description => v_reason);
    end loop;
  end if;

  return jsonb_build_object('transaction_ids', to_jsonb(v_transaction_ids), 'amount', p_amount, 'source', p_source,
    'reason', v_reason, 'balance', private.credit_balance(p_organization_id));
end;
$$;
comment on function public.adjust_credits(uuid, integer, text, text, timestamptz) is
  'Operators and the service role: grants (positive) or debits (negative, never below zero: PT402) credits with a required reason, recorded with the operator.';
revoke all on function public.adjust_credits(uuid, integer, text, text, timestamptz) from public, anon;
grant execute on function public.adjust_credits(uuid, integer, text, text, timestamptz) to authenticated, service_role;

-- ============================================================================
-- Operations
-- ============================================================================

/**
 * Webhook inbox events, newest first, by status (null: every status). The payload is left
 * out; the error of a parked event is in.
 */
create function public.operator_stripe_events(p_status text default 'parked', p_limit integer default 50)
returns table (id text, type text, status text, attempts integer, last_error text, organization_id uuid,
               stripe_created_at timestamptz, received_at timestamptz, processed_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  perform private.require_page(p_limit, 0, 500);
  if p_status is not null and p_status not in ('received', 'processed', 'ignored', 'parked') then
    raise exception 'status must be received, processed, ignored or parked' using errcode = '22023';
  end if;
  return query
  select e.id, e.type, e.status::text, e.attempts, e.last_error, e.organization_id,
         e.stripe_created_at, e.received_at, e.processed_at
    from public.stripe_events e
   where p_status is null or e.status = p_status::public.stripe_event_status
   order by e.received_at desc, e.id
   limit p_limit;
end;
$$;
comment on function public.operator_stripe_events(text, integer) is
  'Operators and the service role: webhook inbox events by status (default parked), newest first, without payloads.';
revoke all on function public.operator_stripe_events(text, integer) from public, anon;
grant execute on function public.operator_stripe_events(text, integer) to authenticated, service_role;

/**
 * The scheduled jobs with their latest run, and the latest p_limit runs of every job.
 */
create function public.operator_job_runs(p_limit integer default 100) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  perform private.require_page(p_limit, 0, 1000);
  return jsonb_build_object(
    'jobs', coalesce((
      select jsonb_agg(jsonb_build_object('name', j.name, 'schedule', j.schedule, 'description', j.description,
                         'enabled', j.enabled, 'last_run', (
                           select to_jsonb(r) from public.job_runs r where r.job_name = j.name
                            order by r.started_at desc limit 1))
                       order by j.name)
        from private.scheduled_jobs j), '[]'::jsonb),
    'runs', coalesce((
      select jsonb_agg(to_jsonb(r) order by r.started_at desc, r.id desc)
        from (select * from public.job_runs r order by r.started_at desc, r.id desc limit p_limit) r), '[]'::jsonb)
  );
end;
$$;
comment on function public.operator_job_runs(integer) is
  'Operators and the service role: every scheduled job with its last run, and the latest runs.';
revoke all on function public.operator_job_runs(integer) from public, anon;
grant execute on function public.operator_job_runs(integer) to authenticated, service_role;

/**
 * Outbound notification deliveries (webhooks and alert emails), newest first, by status
 * (null: every status).
 */
create function public.operator_notifications(p_status text default null, p_limit integer default 100)
returns table (channel text, id uuid, organization_id uuid, type text, recipient text, status text, attempts integer,
               last_error text, last_attempt_at timestamptz, next_attempt_at timestamptz, delivered_at timestamptz,
               created_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  perform private.require_page(p_limit, 0, 500);
  if p_status is not null and p_status not in ('pending', 'delivered', 'failed') then
    raise exception 'status must be pending, delivered or failed' using errcode = '22023';
  end if;
  return query
  select d.* from (
    select 'webhook'::text as channel, n.id, n.organization_id, n.type, null::text as recipient, n.status::text as status,
           n.attempts, n.last_error, n.last_attempt_at, n.next_attempt_at, n.delivered_at, n.created_at
      from public.notifications n
     where p_status is null or n.status = p_status::public.notification_status
    union all
    select 'email'::text, e.id, e.organization_id, e.content ->> 'kind', e.recipient, e.status::text, e.attempts, e.last_error,
           e.last_attempt_at, e.next_attempt_at, e.delivered_at, e.created_at
      from public.notification_emails e
     where p_status is null or e.status = p_status::public.notification_status
  ) d
  order by d.created_at desc, d.id
  limit p_limit;
end;
$$;
comment on function public.operator_notifications(text, integer) is
  'Operators and the service role: webhook notifications and alert emails by status, newest first.';
revoke all on function public.operator_notifications(text, integer) from public, anon;
grant execute on function public.operator_notifications(text, integer) to authenticated, service_role;

/**
 * Puts a failed (or waiting) notification back in line for delivery now, with a fresh
 * set of retries. PT409 for one already delivered, PT404 for an unknown one, 22023 for a
 * channel other than webhook or email.
 */
create function public.operator_retry_notification(p_channel text, p_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_status public.notification_status;
begin
  perform private.require_operator();
  if p_channel is null or p_channel not in ('webhook', 'email') then
    raise exception 'channel must be webhook or email' using errcode = '22023';
  end if;
  if p_channel = 'webhook' then
    select n.status into v_status from public.notifications n where n.id = p_id for update;
  else
    select e.status into v_status from public.notification_emails e where e.id = p_id for update;
  end if;
  if v_status is null then
    raise exception 'notification not found' using errcode = 'PT404';
  elsif v_status = 'delivered' then
    raise exception 'notification was already delivered' using errcode = 'PT409';
  end if;
  -- attempts back to zero: the retry schedule starts over, so a receiver fixed today gets a day again.
  if p_channel = 'webhook' then
    update public.notifications n set status = 'pending', attempts = 0, next_attempt_at = now() where n.id = p_id;
  else
    update public.notification_emails e set status = 'pending', attempts = 0, next_attempt_at = now() where e.id = p_id;
  end if;
end;
$$;
comment on function public.operator_retry_notification(text, uuid) is
  'Operators and the service role: re-queues a failed or waiting notification (webhook or email) for delivery now.';
revoke all on function public.operator_retry_notification(text, uuid) from public, anon;
grant execute on function public.operator_retry_notification(text, uuid) to authenticated, service_role;

-- ============================================================================
-- Export
-- ============================================================================

/**
 * Ledger rows in the period, oldest first, for one organization or (null) all, for CSV export,
 * with the email of whoever made each movement (the operator, for adjustments).
 */
create function public.operator_export_ledger(p_organization_id uuid, p_from timestamptz, p_to timestamptz)
returns table (id bigint, organization_id uuid, organization_name text, created_at timestamptz, kind text, source text,
               amount integer, balance_after integer, event_key text, reference text, description text, actor_id uuid,
               actor_email text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  perform private.require_period(p_from, p_to);
  return query
  select t.id, t.organization_id, o.name, t.created_at, t.kind::text, t.source::text, t.amount, t.balance_after,
         t.event_key, t.reference, t.description, t.actor_id, u.email::text
    from public.credit_transactions t
    join public.organizations o on o.id = t.organization_id
    left join auth.users u on u.id = t.actor_id
   where (p_organization_id is null or t.organization_id = p_organization_id)
     and t.created_at >= p_from and t.created_at < p_to
   order by t.created_at, t.id;
end;
$$;
comment on function public.operator_export_ledger(uuid, timestamptz, timestamptz) is
  'Operators and the service role: the ledger of one organization (or all, null) in a period, oldest first.';
revoke all on function public.operator_export_ledger(uuid, timestamptz, timestamptz) from public, anon;
grant execute on function public.operator_export_ledger(uuid, timestamptz, timestamptz) to authenticated, service_role;

/**
 * Billing history rows that happened in the period, oldest first, for one organization or
 * (null) all, for CSV export.
 */
create function public.operator_export_history(p_organization_id uuid, p_from timestamptz, p_to timestamptz)
returns table (id uuid, organization_id uuid, organization_name text, occurred_at timestamptz, kind text, status text,
               description text, amount bigint, currency text, stripe_reference text, invoice_url text, receipt_url text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  perform private.require_period(p_from, p_to);
  return query
  select h.id, h.organization_id, o.name, h.occurred_at, h.kind::text, h.status::text, h.description, h.amount,
         h.currency, h.stripe_reference, h.invoice_url, h.receipt_url
    from public.billing_history h
    join public.organizations o on o.id = h.organization_id
   where (p_organization_id is null or h.organization_id = p_organization_id)
     and h.occurred_at >= p_from and h.occurred_at < p_to
   order by h.occurred_at, h.id;
end;
$$;
comment on function public.operator_export_history(uuid, timestamptz, timestamptz) is
  'Operators and the service role: the billing history of one organization (or all, null) in a period, oldest first.';
revoke all on function public.operator_export_history(uuid, timestamptz, timestamptz) from public, anon;
grant execute on function public.operator_export_history(uuid, timestamptz, timestamptz) to authenticated, service_role;

-- ============================================================================
-- Operator alerts
-- ============================================================================

/**
 * Raises an operator alert unless an open one with the same dedupe key exists; returns its
 * id. Service role only (the reconciliation job).
 */
create function public.raise_operator_alert(
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
declare
  v_id uuid;
begin
  perform private.require_service();
  if p_kind is null or p_kind not in ('reconciliation_drift') then
    raise exception 'invalid operator alert kind %', coalesce(p_kind, 'null') using errcode = '22023';
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
  insert into public.billing_operator_alerts (kind, severity, title, message, data, dedupe_key)
  values (p_kind::public.operator_alert_kind, p_severity::public.billing_alert_severity, btrim(p_title),
          coalesce(p_message, ''), p_data, p_dedupe_key)
  on conflict (dedupe_key) where dedupe_key is not null and dismissed_at is null do nothing
  returning id into v_id;
  if v_id is null then
    select a.id into v_id from public.billing_operator_alerts a where a.dedupe_key = p_dedupe_key and a.dismissed_at is null;
  end if;
  return v_id;
end;
$$;
comment on function public.raise_operator_alert(text, text, text, text, jsonb, text) is
  'Service role: raises an operator alert (kind reconciliation_drift), once per open dedupe key.';
revoke all on function public.raise_operator_alert(text, text, text, text, jsonb, text) from public, anon, authenticated;
grant execute on function public.raise_operator_alert(text, text, text, text, jsonb, text) to service_role;

/** Operator alerts, open ones first, newest first. */
create function public.operator_alerts(p_include_dismissed boolean default false)
returns setof public.billing_operator_alerts
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  return query
  select a.* from public.billing_operator_alerts a
   where coalesce(p_include_dismissed, false) or a.dismissed_at is null
   order by (a.dismissed_at is null) desc, a.created_at desc
   limit 200;
end;
$$;
comment on function public.operator_alerts(boolean) is 'Operators and the service role: operator alerts, open first, newest first.';
revoke all on function public.operator_alerts(boolean) from public, anon;
grant execute on function public.operator_alerts(boolean) to authenticated, service_role;

/** Dismisses an operator alert (PT404 if there is no open alert with that id). */
create function public.dismiss_operator_alert(p_alert_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_operator();
  update public.billing_operator_alerts a
     set dismissed_at = now(), dismissed_by = auth.uid()
   where a.id = p_alert_id and a.dismissed_at is null;
  if not found then
    raise exception 'no open operator alert %', p_alert_id using errcode = 'PT404';
  end if;
end;
$$;
comment on function public.dismiss_operator_alert(uuid) is 'Operators and the service role: dismisses an open operator alert.';
revoke all on function public.dismiss_operator_alert(uuid) from public, anon;
grant execute on function public.dismiss_operator_alert(uuid) to authenticated, service_role;

-- ============================================================================
-- Reconciliation with Stripe
-- ============================================================================

/**
 * Our records of the Stripe objects a reconciliation looked at, in one round trip, for the
 * reconciliation route (which reads Stripe): subscriptions by Stripe id as we applied them,
 * payments by Stripe reference (invoice or checkout session) with their status, credit lots
 * granted for those references, the organization linked to each customer, and every
 * subscription we hold as live (one Stripe no longer lists is drift too). Service role only.
 */
create function public.reconciliation_records(
  p_stripe_subscription_ids text[],
  p_references text[],
  p_customer_ids text[]
) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  return jsonb_build_object(
    'subscriptions', coalesce((
      select jsonb_object_agg(s.stripe_subscription_id, jsonb_build_object(
               'organization_id', s.organization_id, 'status', s.status,
               'current_period_start', s.current_period_start, 'current_period_end', s.current_period_end,
               'cancel_at_period_end', s.cancel_at_period_end))
        from public.organization_subscriptions s
       where s.stripe_subscription_id = any (coalesce(p_stripe_subscription_ids, '{}'))), '{}'::jsonb),
    'payments', coalesce((
      select jsonb_object_agg(h.stripe_reference, jsonb_build_object('organization_id', h.organization_id, 'status', h.status))
        from public.billing_history h
       where h.stripe_reference = any (coalesce(p_references, '{}'))), '{}'::jsonb),
    'grants', coalesce((
      select jsonb_object_agg(l.reference, jsonb_build_object('organization_id', l.organization_id, 'granted', l.granted))
        from public.credit_lots l
       where l.reference = any (coalesce(p_references, '{}'))), '{}'::jsonb),
    'customers', coalesce((
      select jsonb_object_agg(o.stripe_customer_id, o.id)
        from public.organizations o
       where o.stripe_customer_id = any (coalesce(p_customer_ids, '{}'))), '{}'::jsonb),
    'live_subscriptions', coalesce((
      select jsonb_agg(jsonb_build_object('stripe_subscription_id', s.stripe_subscription_id,
                                          'organization_id', s.organization_id, 'status', s.status)
                       order by s.stripe_subscription_id)
        from public.organization_subscriptions s
       where s.status in ('trialing', 'active', 'past_due', 'unpaid', 'incomplete', 'paused')), '[]'::jsonb)
  );
end;
$$;
comment on function public.reconciliation_records(text[], text[], text[]) is
  'Service role: our subscriptions, payments, grants and customer links for the Stripe ids a reconciliation read, and every live subscription.';
revoke all on function public.reconciliation_records(text[], text[], text[]) from public, anon, authenticated;
grant execute on function public.reconciliation_records(text[], text[], text[]) to service_role;

-- ============================================================================
-- The reconciliation job
-- ============================================================================

-- Daily: compares the last two days of Stripe with our records and raises a
-- reconciliation_drift operator alert when they differ (repairs are an operator's decision).
insert into private.scheduled_jobs (name, schedule, description, kind, sql_command, function_path) values
  ('reconcile_stripe', '41 4 * * *',
   'Compares the last two days of Stripe (subscriptions, paid invoices, paid credit packs, customers) with our records; raises an operator alert on drift.',
   'function', null, 'stripe-webhook/reconcile');

do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform private.schedule_jobs_on_cron();
  end if;
end;
$$;
