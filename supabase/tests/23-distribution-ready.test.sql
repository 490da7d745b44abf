-- Ready to shard by organization (Citus) without needing Citus: the catalog says every
-- organization-scoped table can be distributed by organization_id (the key in its primary key,
-- in every unique constraint and in every foreign key to another such table), that the only
-- tables without it are the declared reference and local tables below, each with its reason,
-- and the hot functions touch one organization's rows only.

begin;
select plan(13);

-- ============================================================================
-- The declared exceptions: every table not distributed by organization_id
-- ============================================================================

create temp table declared_tables (table_name text primary key, form text not null, reason text not null);
insert into declared_tables values
  ('public.organizations', 'distributed by id',
   'the tenant itself: its id is every other table''s organization_id, so it is colocated with them'),
  ('public.subscription_plans', 'reference', 'catalog: small, read by every organization, written by the operator'),
  ('public.credit_events', 'reference', 'catalog: small, read by every organization, written by the operator'),
  ('public.credit_products', 'reference', 'catalog: small, read by every organization, written by the operator'),
  ('private.retired_stripe_prices', 'reference', 'catalog: the prices plans and products had before'),
  ('private.stripe_object_owners', 'reference',
   'Stripe ids are global: the webhook finds an event''s organization from its customer before it knows the organization'),
  ('public.subscription_trials', 'reference', 'one trial per owner across every organization they own: looked up by user'),
  ('public.trial_owners', 'reference', 'one trial per owner across every organization they own: looked up by user'),
  ('public.stripe_events', 'local', 'the webhook inbox, keyed by Stripe''s event id and stored before the organization is known'),
  ('public.job_runs', 'local', 'the scheduler''s own record of its runs, on the coordinator where jobs run'),
  ('private.scheduled_jobs', 'local', 'the scheduler''s job definitions, on the coordinator where jobs run'),
  ('public.billing_operators', 'reference', 'the SaaS''s own staff: a short list of users, checked by every operator function'),
  ('public.billing_operator_alerts', 'local', 'alerts about the whole business (reconciliation drift), raised by jobs on the coordinator');

-- Every ordinary table in public and private with its distribution column (null: not distributed).
create temp view table_forms as
select c.oid as relid,
       c.relnamespace::regnamespace::text || '.' || c.relname as table_name,
       coalesce(d.form, 'distributed') as form,
       case when d.form = 'distributed by id' then 'id'
            when d.form is null then 'organization_id' end as distribution_column
  from pg_catalog.pg_class c
  left join declared_tables d on d.table_name = c.relnamespace::regnamespace::text || '.' || c.relname
 where c.relnamespace in ('public'::regnamespace, 'private'::regnamespace)
   and c.relkind in ('r', 'p');

create temp view distributed_tables as
select f.relid, f.table_name, a.attnum as distribution_attnum
  from table_forms f
  join pg_catalog.pg_attribute a on a.attrelid = f.relid and a.attname = f.distribution_column and not a.attisdropped
 where f.distribution_column is not null;

-- ============================================================================
-- Tables
-- ============================================================================

select is_empty(
  $$ select f.table_name from table_forms f
      where f.form = 'distributed'
        and not exists (select 1 from distributed_tables t where t.relid = f.relid) $$,
  'every table in public and private has organization_id, apart from the declared reference and local tables'
);

select is_empty(
  $$ select d.table_name from declared_tables d where to_regclass(d.table_name) is null $$,
  'every declared exception is a table that exists (the list is exact, not a wish list)'
);

select is_empty(
  $$ select d.table_name from declared_tables d where char_length(d.reason) < 20 $$,
  'every declared exception says why'
);

select is_empty(
  $$ select t.table_name from distributed_tables t
       join pg_catalog.pg_attribute a on a.attrelid = t.relid and a.attnum = t.distribution_attnum
      where not a.attnotnull $$,
  'the distribution column is never null (a sharded row needs a shard)'
);

-- ============================================================================
-- Keys
-- ============================================================================

select is_empty(
  $$ select t.table_name from distributed_tables t
      where not exists (select 1 from pg_catalog.pg_constraint c
                         where c.conrelid = t.relid and c.contype = 'p'
                           and t.distribution_attnum = any (c.conkey)) $$,
  'every distributed table has a primary key that includes its distribution column'
);

select is_empty(
  $$ select t.table_name || ' ' || i.indexrelid::regclass::text
       from distributed_tables t
       join pg_catalog.pg_index i on i.indrelid = t.relid
      where (i.indisunique or i.indisexclusion)
        and not (t.distribution_attnum = any (i.indkey::int2[])) $$,
  'every unique constraint and unique index (partial ones too) on a distributed table includes its distribution column'
);

select is_empty(
  $$ select c.conrelid::regclass::text || ' ' || c.conname
       from pg_catalog.pg_constraint c
       join distributed_tables src on src.relid = c.conrelid
       join distributed_tables dst on dst.relid = c.confrelid
      where c.contype = 'f'
        and not exists (
          select 1 from generate_subscripts(c.conkey, 1) k
           where c.conkey[k] = src.distribution_attnum and c.confkey[k] = dst.distribution_attnum) $$,
  'every foreign key between distributed tables pairs their distribution columns, so it holds within one shard'
);

select is_empty(
  $$ select c.conrelid::regclass::text || ' ' || c.conname
       from pg_catalog.pg_constraint c
       join table_forms src on src.relid = c.conrelid and src.form in ('reference', 'local')
       join distributed_tables dst on dst.relid = c.confrelid
      where c.contype = 'f' $$,
  'no reference or local table has a foreign key to a distributed table (Citus cannot enforce one)'
);

select is_empty(
  $$ select c.conrelid::regclass::text || ' ' || c.conname
       from pg_catalog.pg_constraint c
       join distributed_tables src on src.relid = c.conrelid
       join table_forms dst on dst.relid = c.confrelid and dst.form = 'local'
      where c.contype = 'f' $$,
  'no distributed table has a foreign key to a local table'
);

select is_empty(
  $$ select c.conrelid::regclass::text || ' ' || c.conname
       from pg_catalog.pg_constraint c
       join table_forms src on src.relid = c.conrelid and src.form = 'reference'
       join table_forms dst on dst.relid = c.confrelid and dst.form = 'local'
      where c.contype = 'f' $$,
  'no reference table has a foreign key to a local table'
);

-- ============================================================================
-- Service role: the hot functions touch one organization
-- ============================================================================

-- Two organizations set up alike; every row of every distributed table that a call reads,
-- inserts, updates or deletes is counted (Postgres's per-transaction statistics: rows read by
-- sequential scans, index entries returned, rows written). The first organization is measured
-- beside 2,000 other organizations with history of their own, the second beside 6,000. A call
-- that reached into other organizations' rows (a scan not bounded by the organization) would
-- touch at least one more row per added organization, 4,000 or more (each has three lots,
-- thirty ledger rows, two reservations); the planner's choice between two indexes of one
-- organization's rows, and the dead row versions an index walk passes, move it by a few
-- hundred at most.
set local plan_cache_mode = force_custom_plan;

-- Both under a monthly spend limit, so the calls take the limit's path too.
insert into public.organizations (id, name, monthly_spend_limit) values
  ('23232323-0000-4000-8000-00000000000a', 'Shard A', 100000),
  ('23232323-0000-4000-8000-00000000000b', 'Shard B', 100000);

create temp table touched (label text, table_name text, count bigint);
create function pg_temp.note_touched(p_label text) returns void language sql as $$
  insert into touched
  select p_label, t.table_name,
         pg_catalog.pg_stat_get_xact_tuples_returned(t.relid)
         + pg_catalog.pg_stat_get_xact_tuples_inserted(t.relid)
         + pg_catalog.pg_stat_get_xact_tuples_updated(t.relid)
         + pg_catalog.pg_stat_get_xact_tuples_deleted(t.relid)
         + coalesce((select sum(pg_catalog.pg_stat_get_xact_tuples_returned(i.indexrelid))
                       from pg_catalog.pg_index i where i.indrelid = t.relid), 0)
    from distributed_tables t
$$;

/** The hot functions, on one organization, as a service calls them. */
create function pg_temp.hot_calls(p_organization_id uuid) returns void language plpgsql as $$
declare
  v_reservation_id uuid;
begin
  perform public.consume_credits(p_organization_id, 'api_call_basic', 3);
  perform public.consume_credits(p_organization_id, 'api_call_premium', 2, 'request-1', '{"model": "m"}');
  perform public.consume_credits(p_organization_id, 'api_call_premium', 2, 'request-1', '{"model": "m"}');
  perform public.consume_credits(p_organization_id, 'ai_inference', 40);
  perform public.consume_credits_batch(p_organization_id, '[
    {"event_key": "api_call_basic"},
    {"event_key": "api_call_premium", "quantity": 2, "idempotency_key": "batch-1"},
    {"event_key": "api_call_premium", "quantity": 2, "idempotency_key": "request-1", "metadata": {"model": "m"}},
    {"event_key": "no_such_event"}
  ]');
  v_reservation_id := public.reserve_credits(p_organization_id, 'api_call_premium', 3) ->> 'reservation_id';
  perform public.settle_reservation(v_reservation_id, 2);
  v_reservation_id := public.reserve_credits(p_organization_id, 'api_call_basic', 5, 'reserve-1') ->> 'reservation_id';
  perform public.reserve_credits(p_organization_id, 'api_call_basic', 5, 'reserve-1');
  perform public.release_reservation(v_reservation_id);
  perform public.get_credit_balance(p_organization_id);
end;
$$;

grant all on touched to service_role;
grant select on table_forms, distributed_tables, declared_tables to service_role;

select tests.authenticate_as_service_role();
select public.grant_credits(o, 1000, 'purchased', null, 'pack-1'),
       public.grant_credits(o, 500, 'subscription', now() + interval '20 days', 'in_1'),
       public.grant_credits(o, 200, 'subscription', now() + interval '40 days', 'in_2')
  from unnest(array['23232323-0000-4000-8000-00000000000a', '23232323-0000-4000-8000-00000000000b']::uuid[]) o;

/**
 * Organizations first .. first + count - 1, each with history of its own, written in bulk as
 * the table owner: three lots, their grants, ten consumptions (with idempotency keys) and
 * their ledger rows, an open and a released reservation.
 */
create function pg_temp.add_other_organizations(p_first integer, p_count integer) returns void language sql as $$
  insert into public.organizations (id, name)
  select ('23232323-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'Other ' || g
    from generate_series(p_first, p_first + p_count - 1) g;
  insert into public.credit_lots (organization_id, source, granted, remaining, expires_at, reference)
  select ('23232323-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, s.source::public.credit_source, 1000, 990, s.expires_at, s.reference
    from generate_series(p_first, p_first + p_count - 1) g,
         (values ('purchased', null::timestamptz, 'pack-1'), ('subscription', now() + interval '20 days', 'in_1'),
                 ('subscription', now() + interval '40 days', 'in_2')) s(source, expires_at, reference);
  insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id, reference)
  select l.organization_id, 'grant', l.source, 1000, 1000, l.id, l.reference
    from public.credit_lots l
   where l.organization_id in (select ('23232323-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid
                                 from generate_series(p_first, p_first + p_count - 1) g);
  insert into public.credit_consumptions (organization_id, event_key, quantity, credits, purchased_used, subscription_used,
    precedence, idempotency_key, result)
  select ('23232323-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'api_call_basic', 1, 1, 1, 0, 'purchased_first',
         'request-' || k, '{}'
    from generate_series(p_first, p_first + p_count - 1) g, generate_series(1, 10) k;
  insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id, consumption_id)
  select c.organization_id, 'consumption', 'purchased', -1, 2990, l.id, c.id
    from public.credit_consumptions c
    join public.credit_lots l on l.organization_id = c.organization_id and l.source = 'purchased'
   where c.organization_id in (select ('23232323-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid
                                 from generate_series(p_first, p_first + p_count - 1) g);
  insert into public.credit_reservations (organization_id, event_key, quantity, unit_cost, credits, precedence, ttl_seconds,
    expires_at, status, closed_at, idempotency_key, result)
  select ('23232323-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'api_call_basic', 5, 1, 5, 'purchased_first', 900,
         now() + interval '15 minutes', r.status::public.credit_reservation_status, r.closed_at, 'reserve-' || r.status, '{}'
    from generate_series(p_first, p_first + p_count - 1) g,
         (values ('open', null::timestamptz), ('released', now())) r(status, closed_at);
$$;

-- The first organization is measured beside 2,000 others, the second beside 6,000: the same
-- calls must touch the same number of rows.
reset role;  -- the table owner writes the others' history
select pg_temp.add_other_organizations(1, 2000);
analyze public.organizations, public.credit_lots, public.credit_transactions, public.credit_consumptions,
  public.credit_reservations;
select tests.authenticate_as_service_role();
select pg_temp.note_touched('a before');
select pg_temp.hot_calls('23232323-0000-4000-8000-00000000000a');
select pg_temp.note_touched('a after');

reset role;  -- the table owner writes the others' history
select pg_temp.add_other_organizations(2001, 4000);
analyze public.organizations, public.credit_lots, public.credit_transactions, public.credit_consumptions,
  public.credit_reservations;
select tests.authenticate_as_service_role();
select pg_temp.note_touched('b before');
select pg_temp.hot_calls('23232323-0000-4000-8000-00000000000b');
select pg_temp.note_touched('b after');

create temp view touched_by_calls as
select a.table_name, a_after.count - a.count as on_a, b_after.count - b.count as on_b
  from touched a
  join touched a_after on a_after.table_name = a.table_name and a_after.label = 'a after'
  join touched b on b.table_name = a.table_name and b.label = 'b before'
  join touched b_after on b_after.table_name = a.table_name and b_after.label = 'b after'
 where a.label = 'a before';

select ok(
  (select on_a > 0 from touched_by_calls where table_name = 'public.credit_lots')
  and (select on_a > 0 from touched_by_calls where table_name = 'public.credit_transactions'),
  'the count sees what the calls do (they read and write lots and ledger rows)'
);

select is_empty(
  $$ select table_name || ': ' || on_a || ' rows beside 2,000 other organizations, ' || on_b || ' beside 6,000'
       from touched_by_calls where abs(on_b - on_a) >= 1000 $$,
  'consume_credits, consume_credits_batch, reserve_credits, settle_reservation, release_reservation and get_credit_balance touch as many rows beside 6,000 other organizations as beside 2,000: one organization''s rows only'
);

select is(
  (public.get_credit_balance('23232323-0000-4000-8000-00000000000a') -> 'total'),
  (public.get_credit_balance('23232323-0000-4000-8000-00000000000b') -> 'total'),
  'and both organizations ended where the same calls take them'
);

select * from finish();
rollback;
