-- Spend limits: owners and admins cap the credits consumed per calendar month (UTC); a
-- consumption, batch event or reservation that would take this month's consumption plus live
-- reservations above the cap is PT429 (batch: spend_limit_reached) and changes nothing; the
-- spend_limit alert is raised once a month; members read the limit and the month's usage.

begin;
select plan(45);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('lea@limit.test');    -- owner of L
select tests.create_user('ada@limit.test');    -- admin of L
select tests.create_user('mo@limit.test');     -- member of L
select tests.create_user('sy@limit.test');     -- stranger

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000002c1', 'L'),
  ('00000000-0000-4000-8000-0000000002c2', 'Last month');
insert into public.organization_members (organization_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000002c1', tests.get_user_id('lea@limit.test'), 'owner'),
  ('00000000-0000-4000-8000-0000000002c1', tests.get_user_id('ada@limit.test'), 'admin'),
  ('00000000-0000-4000-8000-0000000002c1', tests.get_user_id('mo@limit.test'), 'member'),
  ('00000000-0000-4000-8000-0000000002c2', tests.get_user_id('lea@limit.test'), 'owner');

select public.grant_credits('00000000-0000-4000-8000-0000000002c1', 1000, 'purchased', null, 'cs_l');
select public.grant_credits('00000000-0000-4000-8000-0000000002c2', 1000, 'purchased', null, 'cs_lm');
-- Consumed before any limit exists: it counts once one is set.
select public.consume_credits('00000000-0000-4000-8000-0000000002c1', 'ai_inference', 2);

/** The organization's credit state, to show that a refused call changed nothing. */
create function pg_temp.credit_state(p_organization_id uuid) returns text
language sql
security definer
set search_path = ''
as $$
  select md5(concat_ws('|',
    (select jsonb_agg(to_jsonb(l) order by l.id)::text from public.credit_lots l where l.organization_id = p_organization_id),
    (select count(*)::text from public.credit_transactions t where t.organization_id = p_organization_id),
    (select count(*)::text from public.credit_consumptions c where c.organization_id = p_organization_id),
    (select count(*)::text from public.credit_reservations r where r.organization_id = p_organization_id),
    (select jsonb_agg(to_jsonb(m) order by m.month_start)::text from public.credit_spend_months m where m.organization_id = p_organization_id)));
$$;

/** A consumption recorded last month (UTC), as if it had happened then. */
create function pg_temp.consumed_last_month(p_organization_id uuid, p_credits integer) returns void
language sql
security definer
set search_path = ''
as $$
  insert into public.credit_consumptions (organization_id, event_key, quantity, credits, purchased_used, subscription_used,
    precedence, result, created_at)
  values (p_organization_id, 'api_call_basic', p_credits, p_credits, p_credits, 0, 'purchased_first', '{}',
    (pg_catalog.date_trunc('month', now() at time zone 'utc') at time zone 'utc') - interval '1 second');
$$;

/** Moves a reservation's expiry into the past. */
create function pg_temp.age_reservation(p_reservation_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  update public.credit_reservations set expires_at = now() - interval '1 second' where id = p_reservation_id;
$$;

/** alert.raised notifications of spend_limit alerts in the outbox (members cannot read it). */
create function pg_temp.spend_limit_notifications(p_organization_id uuid) returns integer
language sql
security definer
set search_path = ''
as $$
  select count(*)::integer from public.notifications n
   where n.organization_id = p_organization_id and n.type = 'alert.raised' and n.payload::text like '%spend_limit%';
$$;

select function_returns('public', 'set_spend_limit', array['uuid', 'integer'], 'void', 'set_spend_limit(uuid, integer) returns void');
select function_returns('public', 'get_spend_limit', array['uuid'], 'jsonb', 'get_spend_limit(uuid) returns jsonb');

-- ============================================================================
-- Member: may not set it, may read it
-- ============================================================================

select tests.authenticate_as('mo@limit.test');
select throws_ok($$ select public.set_spend_limit('00000000-0000-4000-8000-0000000002c1', 100) $$,
  '42501', null, 'a member cannot set the spend limit');
select is(public.get_spend_limit('00000000-0000-4000-8000-0000000002c1') - 'month_start',
  '{"monthly_credits": null, "consumed_this_month": 50, "reserved": 0, "remaining": null}'::jsonb,
  'without a limit, members read this month''s consumption and no limit');

-- ============================================================================
-- Admin: sets it
-- ============================================================================

select tests.authenticate_as('ada@limit.test');
select lives_ok($$ select public.set_spend_limit('00000000-0000-4000-8000-0000000002c1', 100) $$,
  'an admin sets a monthly limit of 100 credits');
select throws_ok($$ select public.set_spend_limit('00000000-0000-4000-8000-0000000002c1', -1) $$,
  '22023', null, 'a negative limit is 22023');

select tests.authenticate_as('mo@limit.test');
select is(public.get_spend_limit('00000000-0000-4000-8000-0000000002c1'),
  jsonb_build_object('monthly_credits', 100, 'month_start', (date_trunc('month', now() at time zone 'utc'))::date,
                     'consumed_this_month', 50, 'reserved', 0, 'remaining', 50),
  'members read the limit and this month''s usage, counted from the month''s consumptions when the limit was set');
select is((select monthly_spend_limit from public.organizations where id = '00000000-0000-4000-8000-0000000002c1'), 100,
  'members read the limit on their organization too');
select is((select consumed_credits::int from public.credit_spend_months where organization_id = '00000000-0000-4000-8000-0000000002c1'), 50,
  'and the month''s counter');

-- ============================================================================
-- Member: consumption against the limit
-- ============================================================================

select is((public.consume_credits('00000000-0000-4000-8000-0000000002c1', 'storage_gb_month', 2) ->> 'credits_consumed')::int, 20,
  'a consumption within the limit goes through (50 + 20 of 100)');
select set_config('t.state', pg_temp.credit_state('00000000-0000-4000-8000-0000000002c1'), true);
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000002c1', 'ai_inference', 2) $$,
  'PT429', null, 'a consumption that would pass the limit (70 + 50 > 100) is PT429');
select is(pg_temp.credit_state('00000000-0000-4000-8000-0000000002c1'), current_setting('t.state'), 'and changes nothing');
select is((public.get_credit_balance('00000000-0000-4000-8000-0000000002c1') ->> 'total')::int, 930,
  'the credits are still there: the limit, not the balance, refused it');

-- Live reservations count.
select set_config('t.r1', public.reserve_credits('00000000-0000-4000-8000-0000000002c1', 'storage_gb_month', 2)::text, true);
select is((public.get_spend_limit('00000000-0000-4000-8000-0000000002c1') ->> 'reserved')::int, 20, 'a live reservation counts against the limit');
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000002c1', 'api_call_premium', 3) $$,
  'PT429', null, 'so a consumption that fits the consumed credits but not the reserved ones is PT429 (70 + 20 + 15 > 100)');
select throws_ok($$ select public.reserve_credits('00000000-0000-4000-8000-0000000002c1', 'api_call_premium', 3) $$,
  'PT429', null, 'a reservation that would pass the limit is PT429');
select is(
  array(select r ->> 'status' from jsonb_array_elements(public.consume_credits_batch('00000000-0000-4000-8000-0000000002c1', $$[
    {"event_key": "api_call_premium", "quantity": 3}, {"event_key": "api_call_premium"}, {"event_key": "api_call_premium"}]$$) -> 'results') r),
  array['spend_limit_reached', 'consumed', 'consumed'],
  'batch events past the limit are spend_limit_reached; later events that fit still go through (95, then 100)');
select is((public.get_spend_limit('00000000-0000-4000-8000-0000000002c1') ->> 'remaining')::int, 0, 'the month''s usage is now at the limit');
select is((select count(*)::int from public.billing_alerts where organization_id = '00000000-0000-4000-8000-0000000002c1' and kind = 'spend_limit'),
  1, 'reaching the limit raises the spend_limit alert');
select is(
  (select severity::text || ': ' || title from public.billing_alerts where organization_id = '00000000-0000-4000-8000-0000000002c1' and kind = 'spend_limit'),
  'warning: Monthly spend limit reached', 'as a warning (owners and admins get an email)');
select is(pg_temp.spend_limit_notifications('00000000-0000-4000-8000-0000000002c1'), 1,
  'and the alert becomes an alert.raised notification');

-- A settlement converts reserved credits into consumed ones; releasing frees room.
select is((public.settle_reservation((current_setting('t.r1')::jsonb ->> 'reservation_id')::uuid, 1) ->> 'credits_consumed')::int, 10,
  'a settlement within its reservation always goes through');
select is(public.get_spend_limit('00000000-0000-4000-8000-0000000002c1') - 'month_start' - 'monthly_credits',
  '{"consumed_this_month": 90, "reserved": 0, "remaining": 10}'::jsonb,
  'the settled credits count as consumed, the released ones no longer count');
select set_config('t.r2', public.reserve_credits('00000000-0000-4000-8000-0000000002c1', 'api_call_premium', 2)::text, true);
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000002c1', 'api_call_basic') $$,
  'PT429', null, 'with the last 10 reserved, even one credit is refused');

select tests.authenticate_as_service_role();
select pg_temp.age_reservation((current_setting('t.r2')::jsonb ->> 'reservation_id')::uuid);
select is((public.get_spend_limit('00000000-0000-4000-8000-0000000002c1') ->> 'reserved')::int, 0,
  'an expired reservation no longer counts, though no sweep has run');
select is((public.consume_credits('00000000-0000-4000-8000-0000000002c1', 'api_call_premium', 2) ->> 'credits_consumed')::int, 10,
  'so its credits can be consumed within the limit');
select is((select count(*)::int from public.billing_alerts where organization_id = '00000000-0000-4000-8000-0000000002c1' and kind = 'spend_limit'),
  1, 'reaching the limit again in the same month raises no second alert');

-- Dismissed, and reached again after a higher limit: still once a month.
update public.billing_alerts set dismissed_at = now() where organization_id = '00000000-0000-4000-8000-0000000002c1' and kind = 'spend_limit';
select public.set_spend_limit('00000000-0000-4000-8000-0000000002c1', 105);
select is((public.consume_credits('00000000-0000-4000-8000-0000000002c1', 'api_call_premium') ->> 'credits_consumed')::int, 5,
  'a higher limit lets consumption continue (the service role sets limits too)');
select is((select count(*)::int from public.billing_alerts where organization_id = '00000000-0000-4000-8000-0000000002c1' and kind = 'spend_limit'),
  1, 'reaching the new limit the same month raises no new alert, even after the first was dismissed');

-- Removing the limit.
select public.set_spend_limit('00000000-0000-4000-8000-0000000002c1', null);
select is((public.consume_credits('00000000-0000-4000-8000-0000000002c1', 'ai_inference', 4) ->> 'credits_consumed')::int, 100,
  'without a limit consumption is bounded by the balance only');
select is(public.get_spend_limit('00000000-0000-4000-8000-0000000002c1') - 'month_start',
  '{"monthly_credits": null, "consumed_this_month": 205, "reserved": 0, "remaining": null}'::jsonb,
  'and this month''s consumption is still reported');
select public.set_spend_limit('00000000-0000-4000-8000-0000000002c1', 300);
select is((public.get_spend_limit('00000000-0000-4000-8000-0000000002c1') ->> 'consumed_this_month')::int, 205,
  'a limit set again counts what was consumed while there was none');
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000002c1', 'ai_inference', 4) $$,
  'PT429', null, 'and enforces it (205 + 100 > 300)');

-- A limit of 0 stops all consumption.
select public.set_spend_limit('00000000-0000-4000-8000-0000000002c2', 0);
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000002c2', 'api_call_basic') $$,
  'PT429', null, 'a limit of 0 refuses every consumption');

-- Last month's consumption does not count.
select pg_temp.consumed_last_month('00000000-0000-4000-8000-0000000002c2', 500);
select public.set_spend_limit('00000000-0000-4000-8000-0000000002c2', 100);
select is((public.get_spend_limit('00000000-0000-4000-8000-0000000002c2') ->> 'consumed_this_month')::int, 0,
  'consumption of an earlier month does not count against this month''s limit');
select is((public.consume_credits('00000000-0000-4000-8000-0000000002c2', 'ai_inference', 4) ->> 'credits_consumed')::int, 100,
  'the whole monthly limit is available');

select throws_ok($$ select public.set_spend_limit('00000000-0000-4000-8000-0000000002ff', 10) $$,
  'PT404', null, 'the service role setting a limit for an unknown organization gets PT404');
select throws_ok($$ select public.set_spend_limit(null, 10) $$, '22023', null, 'a missing organization is 22023');

-- ============================================================================
-- Owner
-- ============================================================================

select tests.authenticate_as('lea@limit.test');
select lives_ok($$ select public.set_spend_limit('00000000-0000-4000-8000-0000000002c1', 1000) $$, 'an owner sets the limit');
select is((select count(*)::int from public.credit_spend_months where organization_id = '00000000-0000-4000-8000-0000000002c1'), 1,
  'members read their organization''s monthly spend rows');

-- ============================================================================
-- Stranger and anon
-- ============================================================================

select tests.authenticate_as('sy@limit.test');
select throws_ok($$ select public.set_spend_limit('00000000-0000-4000-8000-0000000002c1', 1) $$,
  '42501', null, 'a stranger cannot set another organization''s limit');
select throws_ok($$ select public.get_spend_limit('00000000-0000-4000-8000-0000000002c1') $$,
  '42501', null, 'nor read it');
select is((select count(*)::int from public.credit_spend_months), 0, 'a stranger reads no monthly spend rows');

select tests.clear_authentication();
select throws_ok($$ select public.set_spend_limit('00000000-0000-4000-8000-0000000002c1', 1) $$,
  '42501', null, 'anon cannot set a limit');
select throws_ok($$ select public.get_spend_limit('00000000-0000-4000-8000-0000000002c1') $$,
  '42501', null, 'anon cannot read one');

select * from finish();
rollback;
