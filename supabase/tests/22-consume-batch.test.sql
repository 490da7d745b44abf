-- consume_credits_batch: up to 1,000 events in one transaction, applied in array order, each
-- all or nothing on its own, with per-event results; idempotency keys shared with
-- consume_credits; a malformed batch is 22023 and applies nothing. Personas, and the ledger
-- invariants after each step.

begin;
select plan(44);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('bea@batch.test');    -- owner of B
select tests.create_user('ben@batch.test');    -- member of B
select tests.create_user('sid@batch.test');    -- stranger

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000002b1', 'B'),
  ('00000000-0000-4000-8000-0000000002b2', 'Ten credits'),
  ('00000000-0000-4000-8000-0000000002b3', 'Expired lot'),
  ('00000000-0000-4000-8000-0000000002b4', 'Large batches');
insert into public.organization_members (organization_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000002b1', tests.get_user_id('bea@batch.test'), 'owner'),
  ('00000000-0000-4000-8000-0000000002b1', tests.get_user_id('ben@batch.test'), 'member');

select public.grant_credits('00000000-0000-4000-8000-0000000002b1', 100, 'purchased', null, 'cs_b');
select public.grant_credits('00000000-0000-4000-8000-0000000002b1', 100, 'subscription', now() + interval '30 days', 'in_b');
select public.set_low_balance_threshold('00000000-0000-4000-8000-0000000002b1', 100);
select public.consume_credits('00000000-0000-4000-8000-0000000002b1', 'api_call_basic', 1, 'from-consume');
select public.grant_credits('00000000-0000-4000-8000-0000000002b2', 10, 'purchased', null, 'cs_ten');
select public.grant_credits('00000000-0000-4000-8000-0000000002b3', 20, 'purchased', null, 'cs_x');
select tests.add_lot('00000000-0000-4000-8000-0000000002b3', 'subscription', 30, now() - interval '1 hour');
select public.grant_credits('00000000-0000-4000-8000-0000000002b4', 5000, 'purchased', null, 'cs_large');

/** 'ok', or the first ledger invariant the organization breaks. */
create function pg_temp.ledger_holds(p_organization_id uuid) returns text
language sql
security definer
set search_path = ''
as $$
  select coalesce(
    (select pg_catalog.format('row %s has balance_after %s, running sum %s', t.id, t.balance_after, t.running)
       from (select x.id, x.balance_after, sum(x.amount) over (order by x.id) as running
               from public.credit_transactions x where x.organization_id = p_organization_id) t
      where t.balance_after <> t.running limit 1),
    (select pg_catalog.format('ledger sums to %s, lots hold %s', s.ledger, s.lots)
       from (select (select coalesce(sum(x.amount), 0) from public.credit_transactions x where x.organization_id = p_organization_id) as ledger,
                    (select coalesce(sum(l.remaining), 0) from public.credit_lots l where l.organization_id = p_organization_id) as lots) s
      where s.ledger <> s.lots),
    (select pg_catalog.format('lot %s is out of bounds', l.id) from public.credit_lots l
      where l.organization_id = p_organization_id and (l.remaining < 0 or l.remaining > l.granted) limit 1),
    (select pg_catalog.format('consumptions sum to %s, consumption rows to %s', c.consumed, c.ledger)
       from (select (select coalesce(sum(x.credits), 0) from public.credit_consumptions x where x.organization_id = p_organization_id) as consumed,
                    (select coalesce(-sum(x.amount), 0) from public.credit_transactions x
                      where x.organization_id = p_organization_id and x.kind = 'consumption') as ledger) c
      where c.consumed <> c.ledger),
    'ok');
$$;

/** The organization's credit state, to show that a refused call changed nothing. */
create function pg_temp.credit_state(p_organization_id uuid) returns text
language sql
security definer
set search_path = ''
as $$
  select md5(concat_ws('|',
    (select jsonb_agg(to_jsonb(l) order by l.id)::text from public.credit_lots l where l.organization_id = p_organization_id),
    (select count(*)::text from public.credit_transactions t where t.organization_id = p_organization_id),
    (select count(*)::text from public.credit_consumptions c where c.organization_id = p_organization_id)));
$$;

/** Puts the organization's subscription past due beyond its grace period. */
create function pg_temp.hold_subscription_credits(p_organization_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  insert into public.organization_subscriptions
    (organization_id, billing_interval, status, stripe_subscription_id, stripe_customer_id, grace_period_end)
  values (p_organization_id, 'month', 'past_due', 'sub_held', 'cus_held', now() - interval '1 day');
$$;

select function_returns('public', 'consume_credits_batch', array['uuid', 'jsonb'], 'jsonb',
  'consume_credits_batch(uuid, jsonb) returns jsonb');

-- ============================================================================
-- Member: a mixed batch
-- ============================================================================

select tests.authenticate_as('ben@batch.test');

select set_config('t.b1', public.consume_credits_batch('00000000-0000-4000-8000-0000000002b1', $$[
  {"event_key": "api_call_premium", "quantity": 2, "idempotency_key": "e-1"},
  {"event_key": "api_call_basic", "idempotency_key": "from-consume"},
  {"event_key": "api_call_premium", "idempotency_key": "from-consume"},
  {"event_key": "no_such_event"},
  {"event_key": "api_call_basic", "quantity": 0},
  {"event_key": "api_call_basic", "quantity": 1.5},
  {"event_key": "api_call_basic", "quantity": "2"},
  {"quantity": 1},
  {"event_key": "api_call_basic", "idempotency_key": ""},
  {"event_key": "api_call_basic", "metadata": [1]},
  {"event_key": "api_call_basic", "cost": 0},
  {"event_key": "ai_inference", "quantity": 100},
  {"event_key": "api_call_premium", "quantity": 2, "idempotency_key": "e-1"},
  {"event_key": "api_call_premium", "quantity": 3, "idempotency_key": "e-1"},
  {"event_key": "storage_gb_month", "quantity": 10, "metadata": {"bucket": "logs"}}
]$$::jsonb)::text, true);

select is(
  array(select r ->> 'status' from jsonb_array_elements(current_setting('t.b1')::jsonb -> 'results') r),
  array['consumed', 'replayed', 'conflict', 'unknown_event', 'invalid', 'invalid', 'invalid', 'invalid', 'invalid',
        'invalid', 'invalid', 'insufficient_credits', 'replayed', 'conflict', 'consumed'],
  'every event gets its own result, in array order');
select is((current_setting('t.b1')::jsonb ->> 'credits_consumed')::int, 110,
  'the batch consumed 10 + 100 credits; failed events consumed nothing');
select is(current_setting('t.b1')::jsonb -> 'balance', '{"total": 89, "purchased": 0, "subscription": 89, "reserved": 0}'::jsonb,
  'the batch reports the balance after it');
select is(
  (current_setting('t.b1')::jsonb -> 'results' -> 0) - 'transaction_id',
  '{"status": "consumed", "credits_consumed": 10}'::jsonb,
  'a consumed event reports its credits and its transaction id');
select is(
  current_setting('t.b1')::jsonb -> 'results' -> 12 ->> 'transaction_id',
  current_setting('t.b1')::jsonb -> 'results' -> 0 ->> 'transaction_id',
  'a key repeated in the same batch with the same parameters replays the first event');
select is(
  current_setting('t.b1')::jsonb -> 'results' -> 1 ->> 'transaction_id',
  (select id::text from public.credit_consumptions where idempotency_key = 'from-consume'
      and organization_id = '00000000-0000-4000-8000-0000000002b1'),
  'a key consume_credits used replays that consumption (one namespace)');
select ok((current_setting('t.b1')::jsonb -> 'results' -> 3 ->> 'error') like '%no_such_event%',
  'a failed event says why');
select is(
  (select array_agg(c.purchased_used || '/' || c.subscription_used order by c.created_at, (c.result -> 'balance' ->> 'total')::int desc)
     from public.credit_consumptions c where c.batch_id is not null and c.organization_id = '00000000-0000-4000-8000-0000000002b1'),
  array['10/0', '89/11'],
  'each event follows the precedence in array order: purchased credits first, then subscription');
select is(
  (select c.metadata from public.credit_consumptions c
    where c.id = (current_setting('t.b1')::jsonb -> 'results' -> 14 ->> 'transaction_id')::uuid),
  '{"bucket": "logs"}'::jsonb, 'each event is its own consumption row with its metadata');
select is(
  (select array_agg(t.source::text || ':' || t.amount order by t.id) from public.credit_transactions t
    where t.organization_id = '00000000-0000-4000-8000-0000000002b1' and t.reference like 'batch:%'),
  array['purchased:-99', 'subscription:-11'],
  'the batch writes one ledger row per lot it drew from, in precedence order');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002b1'), 'ok', 'the ledger invariants hold after a batch');
select is((select count(*)::int from public.billing_alerts where organization_id = '00000000-0000-4000-8000-0000000002b1' and kind = 'low_balance'),
  1, 'crossing the low-balance threshold in a batch raises one alert');

-- The batch's keys replay through consume_credits too.
select is(
  public.consume_credits('00000000-0000-4000-8000-0000000002b1', 'api_call_premium', 2, 'e-1') - 'idempotent_replay',
  (select c.result - 'idempotent_replay' from public.credit_consumptions c
    where c.id = (current_setting('t.b1')::jsonb -> 'results' -> 0 ->> 'transaction_id')::uuid),
  'consume_credits with a key a batch used returns the batch event''s result');
select is((public.consume_credits('00000000-0000-4000-8000-0000000002b1', 'api_call_premium', 2, 'e-1') ->> 'idempotent_replay')::boolean,
  true, 'as a replay');
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000002b1', 'api_call_premium', 1, 'e-1') $$,
  'PT409', null, 'and the same key with other parameters is PT409 there');

-- A whole batch again: every keyed event replays, nothing is consumed twice.
select is(
  public.consume_credits_batch('00000000-0000-4000-8000-0000000002b1',
    '[{"event_key": "api_call_premium", "quantity": 2, "idempotency_key": "e-1"}]') -> 'results' -> 0 ->> 'status',
  'replayed', 'a retried batch replays its keyed events');

-- ============================================================================
-- Array order and all-or-nothing per event
-- ============================================================================

select tests.authenticate_as_service_role();

select is(
  array(select r ->> 'status' from jsonb_array_elements(public.consume_credits_batch('00000000-0000-4000-8000-0000000002b2', $$[
    {"event_key": "api_call_premium"}, {"event_key": "storage_gb_month"}, {"event_key": "api_call_premium"},
    {"event_key": "api_call_basic"}]$$) -> 'results') r),
  array['consumed', 'insufficient_credits', 'consumed', 'insufficient_credits'],
  'events apply in order: 5 of 10, then 10 does not fit (nothing taken), then 5 fits, then nothing is left');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002b2'), 'ok', 'the ledger invariants hold');

select set_config('t.state', pg_temp.credit_state('00000000-0000-4000-8000-0000000002b2'), true);
select is(public.consume_credits_batch('00000000-0000-4000-8000-0000000002b2', '[{"event_key": "api_call_basic"}]') -> 'balance',
  '{"total": 0, "purchased": 0, "subscription": 0, "reserved": 0}'::jsonb, 'a batch where nothing fits');
select is(pg_temp.credit_state('00000000-0000-4000-8000-0000000002b2'), current_setting('t.state'), 'changes nothing');

-- Lazy expiry: the expired lot is written down first and never spent.
select is(
  public.consume_credits_batch('00000000-0000-4000-8000-0000000002b3', '[{"event_key": "ai_inference"}, {"event_key": "api_call_premium"}]')
    -> 'results' -> 1 ->> 'status',
  'consumed', 'a batch spends live credits');
select is(
  (select array_agg(t.kind::text || ':' || t.amount order by t.id) from public.credit_transactions t
    where t.organization_id = '00000000-0000-4000-8000-0000000002b3' and t.kind <> 'grant'),
  array['expiry:-30', 'consumption:-5'],
  'after writing down the expired lot first; the 25-credit event did not fit in the 20 live credits');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002b3'), 'ok', 'the ledger invariants hold after lazy expiry');

-- 1,000 events, the most a batch may carry.
select is(
  (public.consume_credits_batch('00000000-0000-4000-8000-0000000002b4',
     (select jsonb_agg(jsonb_build_object('event_key', 'api_call_basic', 'idempotency_key', 'k-' || g)) from generate_series(1, 1000) g))
   ->> 'credits_consumed')::int,
  1000, 'a batch of 1,000 events consumes them all');
select is((select count(*)::int from public.credit_consumptions where organization_id = '00000000-0000-4000-8000-0000000002b4'), 1000,
  'as 1,000 consumptions');
select is(
  (public.consume_credits_batch('00000000-0000-4000-8000-0000000002b4',
     (select jsonb_agg(jsonb_build_object('event_key', 'api_call_basic', 'idempotency_key', 'k-' || g)) from generate_series(1, 1000) g))
   ->> 'credits_consumed')::int,
  0, 'sent again, all 1,000 replay and nothing more is consumed');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002b4'), 'ok', 'the ledger invariants hold after large batches');

-- ============================================================================
-- Malformed batches: 22023, nothing applied
-- ============================================================================

select set_config('t.state', pg_temp.credit_state('00000000-0000-4000-8000-0000000002b4'), true);
select throws_ok($$ select public.consume_credits_batch('00000000-0000-4000-8000-0000000002b4', '{"event_key": "api_call_basic"}') $$,
  '22023', null, 'an object instead of an array is 22023');
select throws_ok($$ select public.consume_credits_batch('00000000-0000-4000-8000-0000000002b4', '[]') $$,
  '22023', null, 'an empty batch is 22023');
select throws_ok($$ select public.consume_credits_batch('00000000-0000-4000-8000-0000000002b4', null) $$,
  '22023', null, 'a null batch is 22023');
select throws_ok($$ select public.consume_credits_batch('00000000-0000-4000-8000-0000000002b4',
    (select jsonb_agg(jsonb_build_object('event_key', 'api_call_basic')) from generate_series(1, 1001))) $$,
  '22023', null, 'more than 1,000 events is 22023');
select throws_ok($$ select public.consume_credits_batch('00000000-0000-4000-8000-0000000002b4', '[{"event_key": "api_call_basic"}, "api_call_basic"]') $$,
  '22023', null, 'an element that is not an object is 22023');
select throws_ok($$ select public.consume_credits_batch('00000000-0000-4000-8000-0000000002b4', '[{"event_key": "api_call_basic"}, null]') $$,
  '22023', null, 'a null element is 22023');
select throws_ok($$ select public.consume_credits_batch(null, '[{"event_key": "api_call_basic"}]') $$,
  '22023', null, 'a missing organization is 22023');
select is(pg_temp.credit_state('00000000-0000-4000-8000-0000000002b4'), current_setting('t.state'),
  'malformed batches applied nothing, not even their valid events');
select throws_ok($$ select public.consume_credits_batch('00000000-0000-4000-8000-0000000002ff', '[{"event_key": "api_call_basic"}]') $$,
  'PT404', null, 'the service role batching for an unknown organization gets PT404');

-- ============================================================================
-- Held subscription credits
-- ============================================================================

-- Past due beyond the grace period: B's subscription credits (89) are on hold.
select pg_temp.hold_subscription_credits('00000000-0000-4000-8000-0000000002b1');
select is(
  public.consume_credits_batch('00000000-0000-4000-8000-0000000002b1', '[{"event_key": "api_call_basic"}]') -> 'results' -> 0 ->> 'status',
  'insufficient_credits', 'a batch does not spend subscription credits on hold');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002b1'), 'ok', 'the ledger invariants still hold');

-- ============================================================================
-- Stranger and anon
-- ============================================================================

select tests.authenticate_as('sid@batch.test');
select throws_ok($$ select public.consume_credits_batch('00000000-0000-4000-8000-0000000002b1', '[{"event_key": "api_call_basic"}]') $$,
  '42501', null, 'a stranger cannot consume another organization''s credits in a batch');
select tests.clear_authentication();
select throws_ok($$ select public.consume_credits_batch('00000000-0000-4000-8000-0000000002b1', '[{"event_key": "api_call_basic"}]') $$,
  '42501', null, 'anon cannot call consume_credits_batch');

-- ============================================================================
-- Owner
-- ============================================================================

select tests.authenticate_as('bea@batch.test');
select is(
  public.consume_credits_batch('00000000-0000-4000-8000-0000000002b1', '[{"event_key": "api_call_basic", "quantity": 3}]') -> 'results' -> 0 ->> 'status',
  'insufficient_credits', 'an owner batches for their organization (its subscription credits still on hold)');
select is((select count(*)::int from public.credit_consumptions where organization_id = '00000000-0000-4000-8000-0000000002b1' and batch_id is not null),
  2, 'members read their batch consumptions');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002b1'), 'ok', 'the ledger invariants hold at the end');

select * from finish();
rollback;
