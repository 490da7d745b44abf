-- Reservations: reserve (precedence at reservation time, idempotent), settle for the actual
-- quantity, release, and expiry that holds without any sweep; who may call each, every
-- SQLSTATE, and the ledger invariants after every step (running balance_after, sum of
-- amounts = lots' remaining, each reservation's ledger rows = what it holds).
--
-- now() is fixed for the whole transaction, so a reservation or a lot "expires" here by
-- moving its expires_at into the past as the table owner, as if the clock had run on.

begin;
select plan(73);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('olga@reserve.test');   -- owner of R
select tests.create_user('max@reserve.test');    -- member of R
select tests.create_user('sara@reserve.test');   -- owner of S, stranger to R

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000002a1', 'R'),
  ('00000000-0000-4000-8000-0000000002a2', 'S'),
  ('00000000-0000-4000-8000-0000000002a3', 'Expiry'),
  ('00000000-0000-4000-8000-0000000002a4', 'Lots expiring under reservations');
insert into public.organization_members (organization_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000002a1', tests.get_user_id('olga@reserve.test'), 'owner'),
  ('00000000-0000-4000-8000-0000000002a1', tests.get_user_id('max@reserve.test'), 'member'),
  ('00000000-0000-4000-8000-0000000002a2', tests.get_user_id('sara@reserve.test'), 'owner');

select public.grant_credits('00000000-0000-4000-8000-0000000002a1', 100, 'purchased', null, 'cs_r');
select public.grant_credits('00000000-0000-4000-8000-0000000002a1', 100, 'subscription', now() + interval '30 days', 'in_r');
select public.grant_credits('00000000-0000-4000-8000-0000000002a2', 50, 'purchased', null, 'cs_s');
select public.grant_credits('00000000-0000-4000-8000-0000000002a3', 100, 'purchased', null, 'cs_e');
select public.grant_credits('00000000-0000-4000-8000-0000000002a4', 100, 'subscription', now() + interval '30 days', 'in_x');

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
    (select pg_catalog.format('reservation %s (%s) holds %s in the ledger', r.id, r.status, coalesce(h.held, 0))
       from public.credit_reservations r
       left join lateral (select -sum(t.amount) as held from public.credit_transactions t
                           where t.organization_id = r.organization_id and t.reservation_id = r.id) h on true
      where r.organization_id = p_organization_id
        and coalesce(h.held, 0) <> case when r.status = 'open' then r.credits else 0 end limit 1),
    'ok');
$$;

/** Moves a reservation's expiry into the past, as the clock running on would. */
create function pg_temp.age_reservation(p_reservation_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  update public.credit_reservations set expires_at = now() - interval '1 second' where id = p_reservation_id;
$$;

/** Moves the expiry of an organization's lots into the past. */
create function pg_temp.age_lots(p_organization_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  update public.credit_lots set expires_at = now() - interval '1 second' where organization_id = p_organization_id;
$$;

select function_returns('public', 'reserve_credits', array['uuid', 'text', 'integer', 'text', 'integer', 'jsonb'], 'jsonb',
  'reserve_credits(uuid, text, integer, text, integer, jsonb) returns jsonb');
select function_returns('public', 'settle_reservation', array['uuid', 'integer', 'jsonb'], 'jsonb',
  'settle_reservation(uuid, integer, jsonb) returns jsonb');
select function_returns('public', 'release_reservation', array['uuid'], 'jsonb', 'release_reservation(uuid) returns jsonb');

-- ============================================================================
-- Member: reserve
-- ============================================================================

select tests.authenticate_as('max@reserve.test');

-- 3 × storage_gb_month (10) = 30 credits, purchased first.
select set_config('t.r1', public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'storage_gb_month', 3,
  'job-1', 600, '{"model": "large"}')::text, true);
select is(
  array(select jsonb_object_keys(current_setting('t.r1')::jsonb) order by 1),
  array['balance', 'credits_reserved', 'expires_at', 'idempotent_replay', 'reservation_id'],
  'a reservation returns exactly the contract''s keys');
select is((current_setting('t.r1')::jsonb ->> 'credits_reserved')::int, 30, 'a member reserves cost × quantity credits');
select is((current_setting('t.r1')::jsonb ->> 'expires_at')::timestamptz, now() + interval '600 seconds',
  'the reservation expires p_ttl_seconds from now');
select is(current_setting('t.r1')::jsonb -> 'balance',
  '{"total": 170, "purchased": 70, "subscription": 100, "reserved": 30}'::jsonb,
  'the reserved credits leave the spendable total (precedence: purchased first) and show as reserved');
select is(public.get_credit_balance('00000000-0000-4000-8000-0000000002a1') - 'next_expiry_at' - 'expiring_amount',
  '{"total": 170, "purchased": 70, "subscription": 100, "reserved": 30}'::jsonb,
  'get_credit_balance agrees: total excludes the reserved credits');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002a1'), 'ok', 'the ledger invariants hold after a reservation');

select set_config('t.r1_id', current_setting('t.r1')::jsonb ->> 'reservation_id', true);

select is(public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'storage_gb_month', 3, 'job-1', 600, '{"model": "large"}'),
  current_setting('t.r1')::jsonb || '{"idempotent_replay": true}'::jsonb,
  'the same idempotency key returns the first reservation again, marked as a replay');
select is((select count(*)::int from public.credit_reservations where organization_id = '00000000-0000-4000-8000-0000000002a1'), 1,
  'and reserves nothing more');
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'storage_gb_month', 4, 'job-1', 600, '{"model": "large"}') $$,
  'PT409', null, 'the same key with another quantity is PT409');
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'storage_gb_month', 3, 'job-1', 60, '{"model": "large"}') $$,
  'PT409', null, 'the same key with another ttl is PT409');

-- Reserved credits are invisible to every other consumer.
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic', 171) $$,
  'PT402', null, 'a consumption cannot spend reserved credits (171 of 200 granted, 30 reserved)');
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic', 171) $$,
  'PT402', null, 'nor can another reservation');
select is(public.consume_credits_batch('00000000-0000-4000-8000-0000000002a1', '[{"event_key": "api_call_basic", "quantity": 171}]') -> 'results' -> 0 ->> 'status',
  'insufficient_credits', 'a batch event cannot spend reserved credits either');

-- The second reservation takes the rest of the purchased credits and some subscription credit.
select set_config('t.r2', public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'ai_inference', 4)::text, true);
select is((select array_agg(t.source::text || ':' || t.amount order by t.id) from public.credit_transactions t
            where t.reservation_id = (current_setting('t.r2')::jsonb ->> 'reservation_id')::uuid),
  array['purchased:-70', 'subscription:-30'],
  'precedence is applied at reservation time: purchased credits first, then subscription, one reservation row per lot');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002a1'), 'ok', 'the ledger invariants hold with two reservations');

-- ============================================================================
-- Member: settle
-- ============================================================================

-- 100 reserved (70 purchased + 30 subscription); the job used 2 × 25 = 50.
select set_config('t.s2', public.settle_reservation((current_setting('t.r2')::jsonb ->> 'reservation_id')::uuid, 2,
  '{"tokens": 812}')::text, true);
select is(current_setting('t.s2')::jsonb - 'transaction_id' - 'reservation_id' - 'balance',
  '{"credits_consumed": 50, "credits_released": 50, "purchased_used": 50, "subscription_used": 0}'::jsonb,
  'a settlement consumes cost × the actual quantity from the held credits in the order they were taken, and releases the rest');
select is(current_setting('t.s2')::jsonb -> 'balance',
  '{"total": 120, "purchased": 20, "subscription": 100, "reserved": 30}'::jsonb,
  'the released credits are spendable again, in the lots they came from');
select is(
  (select jsonb_build_object('event_key', c.event_key, 'quantity', c.quantity, 'credits', c.credits, 'metadata', c.metadata)
     from public.credit_consumptions c where c.id = (current_setting('t.s2')::jsonb ->> 'transaction_id')::uuid),
  '{"event_key": "ai_inference", "quantity": 2, "credits": 50, "metadata": {"tokens": 812}}'::jsonb,
  'the settlement is a consumption: a credit_consumptions row with the settled quantity and metadata');
select is(
  (select array_agg(t.kind::text || ':' || t.amount order by t.id) from public.credit_transactions t
    where t.reservation_id = (current_setting('t.r2')::jsonb ->> 'reservation_id')::uuid
       or t.consumption_id = (current_setting('t.s2')::jsonb ->> 'transaction_id')::uuid),
  array['reservation:-70', 'reservation:-30', 'release:70', 'release:30', 'consumption:-50'],
  'in the ledger: the held credits go back to their lots, then the settlement consumes like any consumption');
select is((select sum(u.credits)::int from public.credit_usage_daily u
            where u.organization_id = '00000000-0000-4000-8000-0000000002a1' and u.event_key = 'ai_inference'), 50,
  'the settlement shows in usage analytics');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002a1'), 'ok', 'the ledger invariants hold after a settlement');

select throws_ok(pg_catalog.format('select public.settle_reservation(%L)', current_setting('t.r2')::jsonb ->> 'reservation_id'),
  'PT409', null, 'a settled reservation cannot be settled again (PT409)');
select throws_ok(pg_catalog.format('select public.release_reservation(%L)', current_setting('t.r2')::jsonb ->> 'reservation_id'),
  'PT409', null, 'nor released (PT409)');
select throws_ok(pg_catalog.format('select public.settle_reservation(%L, 4)', current_setting('t.r1_id')),
  '22023', null, 'settling more than was reserved is 22023');
select throws_ok(pg_catalog.format('select public.settle_reservation(%L, -1)', current_setting('t.r1_id')),
  '22023', null, 'a negative quantity is 22023');
select throws_ok(pg_catalog.format('select public.settle_reservation(%L, 1, %L)', current_setting('t.r1_id'), '[1]'),
  '22023', null, 'metadata that is not an object is 22023');
select throws_ok($$ select public.settle_reservation('00000000-0000-4000-8000-00000000dead') $$,
  'PT404', null, 'an unknown reservation is PT404');

-- A settlement of null settles the reserved quantity; of 0, releases everything.
select set_config('t.r3', public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_premium', 2)::text, true);
select is((public.settle_reservation((current_setting('t.r3')::jsonb ->> 'reservation_id')::uuid) ->> 'credits_consumed')::int, 10,
  'a settlement without a quantity consumes the whole reservation');
select set_config('t.r4', public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_premium', 2)::text, true);
select set_config('t.s4', public.settle_reservation((current_setting('t.r4')::jsonb ->> 'reservation_id')::uuid, 0)::text, true);
select is(current_setting('t.s4')::jsonb - 'reservation_id' - 'balance',
  '{"transaction_id": null, "credits_consumed": 0, "credits_released": 10, "purchased_used": 0, "subscription_used": 0}'::jsonb,
  'a settlement of quantity 0 consumes nothing and releases everything');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002a1'), 'ok', 'the ledger invariants hold after full and empty settlements');

-- ============================================================================
-- Member: release
-- ============================================================================

select set_config('t.r5', public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic', 7)::text, true);
select set_config('t.l5', public.release_reservation((current_setting('t.r5')::jsonb ->> 'reservation_id')::uuid)::text, true);
select is(current_setting('t.l5')::jsonb - 'balance' - 'reservation_id', '{"credits_released": 7}'::jsonb,
  'a release returns every credit the reservation held');
select is((current_setting('t.l5')::jsonb -> 'balance' ->> 'reserved')::int, 30, 'and they are no longer reserved');
select is((select status::text from public.credit_reservations where id = (current_setting('t.r5')::jsonb ->> 'reservation_id')::uuid),
  'released', 'the reservation is closed as released');
select throws_ok(pg_catalog.format('select public.release_reservation(%L)', current_setting('t.r5')::jsonb ->> 'reservation_id'),
  'PT409', null, 'releasing twice is PT409');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002a1'), 'ok', 'the ledger invariants hold after a release');

-- ============================================================================
-- Member: bad input
-- ============================================================================

select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic', 0) $$,
  '22023', null, 'quantity 0 is 22023');
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic', 1, null, 0) $$,
  '22023', null, 'a ttl of 0 seconds is 22023');
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic', 1, null, 86401) $$,
  '22023', null, 'a ttl over a day is 22023');
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic', 1, null, null) $$,
  '22023', null, 'a null ttl is 22023');
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic', 1, e'bad\nkey') $$,
  '22023', null, 'an idempotency key with control characters is 22023');
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'no_such_event') $$,
  'PT404', null, 'an unknown event is PT404');
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic', 1000) $$,
  'PT402', null, 'more than the spendable credits is PT402');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002a1'), 'ok', 'refused calls leave the ledger as it was');

-- ============================================================================
-- Stranger
-- ============================================================================

select tests.authenticate_as('sara@reserve.test');

select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic') $$,
  '42501', null, 'a stranger cannot reserve another organization''s credits');
select throws_ok(pg_catalog.format('select public.settle_reservation(%L)', current_setting('t.r1_id')),
  'PT404', null, 'another organization''s reservation is PT404 for settle (its id does not leak)');
select throws_ok(pg_catalog.format('select public.release_reservation(%L)', current_setting('t.r1_id')),
  'PT404', null, 'and for release');
select is((select count(*)::int from public.credit_reservations), 0, 'a stranger reads no other organization''s reservations');
select is((public.reserve_credits('00000000-0000-4000-8000-0000000002a2', 'api_call_basic', 5) ->> 'credits_reserved')::int, 5,
  'an owner reserves in their own organization');

-- ============================================================================
-- Anon
-- ============================================================================

select tests.clear_authentication();
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002a1', 'api_call_basic') $$,
  '42501', null, 'anon cannot reserve');
select throws_ok(pg_catalog.format('select public.settle_reservation(%L)', current_setting('t.r1_id')), '42501', null,
  'anon cannot settle');
select throws_ok(pg_catalog.format('select public.release_reservation(%L)', current_setting('t.r1_id')), '42501', null,
  'anon cannot release');

-- ============================================================================
-- Owner: members' reads
-- ============================================================================

select tests.authenticate_as('olga@reserve.test');
select is((select count(*)::int from public.credit_reservations where organization_id = '00000000-0000-4000-8000-0000000002a1'), 5,
  'members read their organization''s reservations');

-- ============================================================================
-- Expiry without a sweep (service role)
-- ============================================================================

select tests.authenticate_as_service_role();

select set_config('t.e1', public.reserve_credits('00000000-0000-4000-8000-0000000002a3', 'ai_inference', 2)::text, true);
select is((public.get_credit_balance('00000000-0000-4000-8000-0000000002a3') ->> 'total')::int, 50,
  'the service role reserves for any organization: 50 of 100 left');
select pg_temp.age_reservation((current_setting('t.e1')::jsonb ->> 'reservation_id')::uuid);

select is(public.get_credit_balance('00000000-0000-4000-8000-0000000002a3') - 'next_expiry_at' - 'expiring_amount',
  '{"total": 100, "purchased": 100, "subscription": 0, "reserved": 0}'::jsonb,
  'a reservation past its expiry holds nothing, though no sweep has run: its credits are spendable again');
select throws_ok(pg_catalog.format('select public.settle_reservation(%L)', current_setting('t.e1')::jsonb ->> 'reservation_id'),
  'PT410', null, 'settling an expired reservation is PT410');
select throws_ok(pg_catalog.format('select public.release_reservation(%L)', current_setting('t.e1')::jsonb ->> 'reservation_id'),
  'PT410', null, 'releasing it is PT410');
select is((public.consume_credits('00000000-0000-4000-8000-0000000002a3', 'api_call_basic', 100) -> 'balance' ->> 'total')::int, 0,
  'a consumption can spend the credits an expired reservation held');
select is((select status::text from public.credit_reservations where id = (current_setting('t.e1')::jsonb ->> 'reservation_id')::uuid),
  'expired', 'the consumption wrote the expired reservation down first (under the organization''s lock)');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002a3'), 'ok', 'the ledger invariants hold after the write-down');
select throws_ok(pg_catalog.format('select public.settle_reservation(%L)', current_setting('t.e1')::jsonb ->> 'reservation_id'),
  'PT410', null, 'a written-down reservation is still PT410');

-- The sweep writes down what nobody touched.
select set_config('t.e2', public.reserve_credits('00000000-0000-4000-8000-0000000002a2', 'api_call_basic', 3)::text, true);
select pg_temp.age_reservation((current_setting('t.e2')::jsonb ->> 'reservation_id')::uuid);
select is(public.expire_reservations(), 1, 'the sweep writes down every expired reservation it finds');
select is((select status::text from public.credit_reservations where id = (current_setting('t.e2')::jsonb ->> 'reservation_id')::uuid),
  'expired', 'as expired');
select is(public.expire_reservations(), 0, 'and finds nothing the second time');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002a2'), 'ok', 'the ledger invariants hold after the sweep');

-- ============================================================================
-- Lots that expire while their credits are reserved (service role)
-- ============================================================================

select set_config('t.x1', public.reserve_credits('00000000-0000-4000-8000-0000000002a4', 'ai_inference', 2)::text, true);
select set_config('t.x2', public.reserve_credits('00000000-0000-4000-8000-0000000002a4', 'ai_inference', 1)::text, true);
-- The subscription lot's period ends (the clock moves past its expiry).
select pg_temp.age_lots('00000000-0000-4000-8000-0000000002a4');

select is((public.settle_reservation((current_setting('t.x1')::jsonb ->> 'reservation_id')::uuid, 1) ->> 'credits_consumed')::int, 25,
  'a live reservation settles even though the lot its credits came from expired meanwhile');
select is(
  (select array_agg(t.kind::text || ':' || t.amount order by t.id) from public.credit_transactions t
    where t.organization_id = '00000000-0000-4000-8000-0000000002a4' and t.kind in ('expiry', 'consumption')),
  array['expiry:-25', 'consumption:-25', 'expiry:-25'],
  'the unreserved credits expired, the settlement consumed 25, and the 25 it released expired rather than coming back');
select is((public.release_reservation((current_setting('t.x2')::jsonb ->> 'reservation_id')::uuid) -> 'balance' ->> 'total')::int, 0,
  'released credits of an expired lot expire: nothing becomes spendable');
select is(pg_temp.ledger_holds('00000000-0000-4000-8000-0000000002a4'), 'ok', 'the ledger invariants hold through expiry under reservations');

select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002ff', 'api_call_basic') $$,
  'PT404', null, 'the service role reserving for an unknown organization gets PT404');

select tests.authenticate_as('olga@reserve.test');
select throws_ok($$ select public.expire_reservations() $$, '42501', null, 'a signed-in user cannot run the reservation sweep');

select * from finish();
rollback;
