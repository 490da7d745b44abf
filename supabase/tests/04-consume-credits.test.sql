-- consume_credits: the only door to spending. Precedence, the result's shape, all or nothing,
-- every SQLSTATE of the contract, idempotent replays, and who may call it. Results are kept
-- in transaction-local settings (`t.*`) so later assertions, under any persona, can read them.

begin;
select plan(73);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('alice@consume.test');  -- owner of A and of the precedence organizations
select tests.create_user('amy@consume.test');    -- member of A
select tests.create_user('bob@consume.test');    -- owner of B
select tests.create_user('sam@consume.test');    -- member of nothing

insert into public.organizations (id, name) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'A'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'B'),
  ('00000000-0000-4000-8000-0000000000f1', 'Purchased first'),
  ('00000000-0000-4000-8000-0000000000f2', 'Expiring first'),
  ('00000000-0000-4000-8000-0000000000f3', 'Oldest expiry first'),
  ('00000000-0000-4000-8000-0000000000f4', 'Ninety-nine credits');
insert into public.organization_members (organization_id, user_id, role)
select o.id, tests.get_user_id('alice@consume.test'), 'owner'
  from public.organizations o where o.id <> 'bbbbbbbb-0000-4000-8000-00000000000b';
insert into public.organization_members (organization_id, user_id, role) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', tests.get_user_id('amy@consume.test'), 'member'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', tests.get_user_id('bob@consume.test'), 'owner');

insert into public.credit_events (event_key, name, credit_cost, is_active) values ('retired_event', 'Retired event', 1, false);

select public.grant_credits('aaaaaaaa-0000-4000-8000-00000000000a', 1000, 'purchased', null, 'cs_a');
select public.grant_credits('bbbbbbbb-0000-4000-8000-00000000000b', 500, 'purchased', null, 'cs_b');
select public.consume_credits('bbbbbbbb-0000-4000-8000-00000000000b', 'api_call_basic', 2, 'order-b');

select public.grant_credits('00000000-0000-4000-8000-0000000000f1', 100, 'purchased', null, 'cs_pf');
select public.grant_credits('00000000-0000-4000-8000-0000000000f1', 100, 'subscription', now() + interval '30 days', 'in_pf');

select public.grant_credits('00000000-0000-4000-8000-0000000000f2', 100, 'purchased', null, 'cs_ef');
select public.grant_credits('00000000-0000-4000-8000-0000000000f2', 100, 'subscription', now() + interval '30 days', 'in_ef');
select public.set_credit_precedence('00000000-0000-4000-8000-0000000000f2', 'expiring_first');

-- Granted late-expiring first, so "oldest expiry first" is not just "oldest lot first".
select public.grant_credits('00000000-0000-4000-8000-0000000000f3', 100, 'subscription', now() + interval '20 days', 'in_oe_late');
select public.grant_credits('00000000-0000-4000-8000-0000000000f3', 100, 'subscription', now() + interval '10 days', 'in_oe_early');
select public.grant_credits('00000000-0000-4000-8000-0000000000f3', 30, 'purchased', null, 'cs_oe');

select public.grant_credits('00000000-0000-4000-8000-0000000000f4', 60, 'purchased', null, 'cs_ne');
select public.grant_credits('00000000-0000-4000-8000-0000000000f4', 39, 'subscription', now() + interval '30 days', 'in_ne');

-- One organization's credit state, to show that a refused call changed nothing.
create function pg_temp.credit_state(p_organization_id uuid) returns text
language sql
as $$
  select md5(concat_ws('|',
    (select jsonb_agg(to_jsonb(l) order by l.id)::text from public.credit_lots l where l.organization_id = p_organization_id),
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.credit_transactions t where t.organization_id = p_organization_id),
    (select jsonb_agg(to_jsonb(c) order by c.id)::text from public.credit_consumptions c where c.organization_id = p_organization_id)
  ));
$$;

-- ============================================================================
-- Owner: precedence
-- ============================================================================

select tests.authenticate_as('alice@consume.test');

select set_config('t.r_pf', public.consume_credits('00000000-0000-4000-8000-0000000000f1', 'api_call_basic', 150)::text, true);
select is((current_setting('t.r_pf')::jsonb ->> 'purchased_used')::integer, 100,
  'purchased first: purchased 100 + subscription 100, consume 150 spends all 100 purchased credits');
select is((current_setting('t.r_pf')::jsonb ->> 'subscription_used')::integer, 50,
  'purchased first: the remaining 50 come from subscription credits');
select is(current_setting('t.r_pf')::jsonb -> 'balance', '{"total": 50, "purchased": 0, "subscription": 50}'::jsonb,
  'purchased first: the result''s balance is purchased 0, subscription 50');
select is(
  public.get_credit_balance('00000000-0000-4000-8000-0000000000f1') - 'next_expiry_at' - 'expiring_amount' - 'reserved',
  '{"total": 50, "purchased": 0, "subscription": 50}'::jsonb,
  'purchased first: get_credit_balance agrees with the result'
);

select set_config('t.r_ef', public.consume_credits('00000000-0000-4000-8000-0000000000f2', 'api_call_basic', 150)::text, true);
select is((current_setting('t.r_ef')::jsonb ->> 'subscription_used')::integer, 100,
  'expiring first: the same 150 spends all 100 subscription credits first');
select is((current_setting('t.r_ef')::jsonb ->> 'purchased_used')::integer, 50,
  'expiring first: the remaining 50 come from purchased credits');
select is(current_setting('t.r_ef')::jsonb -> 'balance', '{"total": 50, "purchased": 50, "subscription": 0}'::jsonb,
  'expiring first: the result''s balance is purchased 50, subscription 0');

select set_config('t.r_oe', public.consume_credits('00000000-0000-4000-8000-0000000000f3', 'api_call_basic', 150)::text, true);
select results_eq(
  $$ select l.reference, l.remaining from public.credit_lots l
      where l.organization_id = '00000000-0000-4000-8000-0000000000f3' order by l.reference $$,
  $$ values ('cs_oe', 0), ('in_oe_early', 0), ('in_oe_late', 80) $$,
  'purchased first, then subscription lots oldest expiry first (not oldest grant first)'
);
select is(
  (current_setting('t.r_oe')::jsonb ->> 'purchased_used')::integer || '/' || (current_setting('t.r_oe')::jsonb ->> 'subscription_used')::integer,
  '30/120',
  'the result splits what was spent by source'
);

-- ============================================================================
-- Owner: the result
-- ============================================================================

select is(
  array(select jsonb_object_keys(current_setting('t.r_pf')::jsonb) order by 1),
  array['balance', 'credits_consumed', 'idempotent_replay', 'purchased_used', 'subscription_used', 'transaction_id'],
  'the result has exactly the contract''s keys'
);
select is(
  array(select jsonb_object_keys(current_setting('t.r_pf')::jsonb -> 'balance') order by 1),
  array['purchased', 'subscription', 'total'],
  'the result''s balance has exactly total, purchased and subscription'
);
select is((current_setting('t.r_pf')::jsonb ->> 'credits_consumed')::integer, 150,
  'credits_consumed is cost x quantity');
select is(current_setting('t.r_pf')::jsonb -> 'idempotent_replay', 'false'::jsonb,
  'a first call is not an idempotent replay');
select is(
  (select sum(t.amount)::integer from public.credit_transactions t
    where t.consumption_id = (current_setting('t.r_pf')::jsonb ->> 'transaction_id')::uuid),
  -150,
  'the ledger rows carrying the transaction_id debit exactly the credits consumed'
);
select is(
  (select c.credits from public.credit_consumptions c where c.id = (current_setting('t.r_pf')::jsonb ->> 'transaction_id')::uuid),
  150,
  'the transaction_id names the consumption record'
);

-- ============================================================================
-- Owner: all or nothing
-- ============================================================================

reset role;
select set_config('t.ne_state', pg_temp.credit_state('00000000-0000-4000-8000-0000000000f4'), true);
select tests.authenticate_as('alice@consume.test');

select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000000f4', 'api_call_basic', 100) $$,
  'PT402', null, 'balance 99, consume 100: not enough credits');
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000000f4', 'api_call_premium', 20) $$,
  'PT402', null, 'balance 99, consume 20 x 5: not enough credits');
reset role;
select is(pg_temp.credit_state('00000000-0000-4000-8000-0000000000f4'), current_setting('t.ne_state'),
  'a refused consumption writes no ledger row, no consumption and changes no lot');
select tests.authenticate_as('alice@consume.test');
select lives_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000000f4', 'api_call_basic', 99) $$,
  'balance 99, consume 99: the whole balance can be spent');
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000000f4', 'api_call_basic') $$,
  'PT402', null, 'an empty balance cannot pay for a single credit');

-- ============================================================================
-- Owner: bad input (22023) and unknown events (PT404)
-- ============================================================================

select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 0) $$,
  '22023', null, 'quantity 0 is rejected');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', -1) $$,
  '22023', null, 'a negative quantity is rejected');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', null) $$,
  '22023', null, 'a null quantity is rejected');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'ai_inference', 2147483647) $$,
  '22023', null, 'a quantity whose cost overflows an integer is rejected, not a server error');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, '') $$,
  '22023', null, 'an empty idempotency key is rejected');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, '   ') $$,
  '22023', null, 'a blank idempotency key is rejected');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, repeat('k', 256)) $$,
  '22023', null, 'an idempotency key of 256 characters is rejected');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, E'bad\tkey') $$,
  '22023', null, 'an idempotency key with a tab is rejected');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, E'line\nbreak') $$,
  '22023', null, 'an idempotency key with a newline is rejected');
select lives_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, repeat('k', 255)) $$,
  'an idempotency key of 255 characters is accepted');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, null, '[]') $$,
  '22023', null, 'metadata that is an array is rejected');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, null, '"text"') $$,
  '22023', null, 'metadata that is a string is rejected');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, null, 'null'::jsonb) $$,
  '22023', null, 'metadata that is JSON null is rejected');
select throws_ok(
  $$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, null, jsonb_build_object('blob', repeat('x', 17000))) $$,
  '22023', null, 'metadata larger than 16 KB is rejected');
select lives_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, null, null) $$,
  'SQL null metadata is taken as an empty object');
select throws_ok($$ select public.consume_credits(null, 'api_call_basic') $$,
  '22023', null, 'a null organization id is rejected');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'no_such_event') $$,
  'PT404', null, 'an unknown event key is not found');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'retired_event') $$,
  'PT404', null, 'an inactive event key is not found');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', null) $$,
  'PT404', null, 'a null event key is not found');
select is((public.get_credit_balance('aaaaaaaa-0000-4000-8000-00000000000a') ->> 'total')::integer, 998,
  'of all the calls above only the two valid ones consumed (1000 - 2)');

-- ============================================================================
-- Owner: idempotency
-- ============================================================================

select set_config('t.r1', public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_premium', 2, 'order-1', '{"b": 1, "a": 2}')::text, true);
select set_config('t.r2', public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_premium', 2, 'order-1', '{"a": 2, "b": 1}')::text, true);

select is(current_setting('t.r2')::jsonb -> 'idempotent_replay', 'true'::jsonb,
  'the same idempotency key with the same parameters is an idempotent replay');
select is(current_setting('t.r2')::jsonb - 'idempotent_replay', current_setting('t.r1')::jsonb - 'idempotent_replay',
  'a replay returns the first call''s result (same transaction_id, split and balance)');
select is((public.get_credit_balance('aaaaaaaa-0000-4000-8000-00000000000a') ->> 'total')::integer, 988,
  'a replay consumes nothing more (998 - 10, once)');
select is(
  (select count(*)::integer from public.credit_consumptions c
    where c.organization_id = 'aaaaaaaa-0000-4000-8000-00000000000a' and c.idempotency_key = 'order-1'),
  1,
  'one idempotency key records one consumption'
);
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_premium', 3, 'order-1', '{"a": 2, "b": 1}') $$,
  'PT409', null, 'the same key with another quantity is a conflict');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 2, 'order-1', '{"a": 2, "b": 1}') $$,
  'PT409', null, 'the same key with another event is a conflict');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_premium', 2, 'order-1', '{"a": 3}') $$,
  'PT409', null, 'the same key with other metadata is a conflict');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_premium', 2, 'order-1') $$,
  'PT409', null, 'the same key with the metadata left out is a conflict');
select is((public.get_credit_balance('aaaaaaaa-0000-4000-8000-00000000000a') ->> 'total')::integer, 988,
  'a conflicting reuse of a key consumes nothing');

select lives_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic') $$,
  'a call without an idempotency key succeeds');
select lives_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic') $$,
  'the identical call without an idempotency key succeeds again');
select is((public.get_credit_balance('aaaaaaaa-0000-4000-8000-00000000000a') ->> 'total')::integer, 986,
  'calls without an idempotency key are never deduplicated');

-- ============================================================================
-- Owner of B: keys are per organization
-- ============================================================================

select tests.authenticate_as('bob@consume.test');

select is(
  public.consume_credits('bbbbbbbb-0000-4000-8000-00000000000b', 'api_call_premium', 2, 'order-1', '{"a": 2, "b": 1}') -> 'idempotent_replay',
  'false'::jsonb,
  'another organization''s use of the same key is not a replay'
);
select is((public.get_credit_balance('bbbbbbbb-0000-4000-8000-00000000000b') ->> 'total')::integer, 488,
  'and it consumes B''s credits (500 - 2 - 10)');

-- ============================================================================
-- Member
-- ============================================================================

reset role;
select set_config('t.b_state', pg_temp.credit_state('bbbbbbbb-0000-4000-8000-00000000000b'), true);
select tests.authenticate_as('amy@consume.test');

select set_config('t.r_member', public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, 'member-1')::text, true);
select is((current_setting('t.r_member')::jsonb ->> 'credits_consumed')::integer, 1,
  'a member can consume their organization''s credits');
select is(
  (select c.actor_id from public.credit_consumptions c where c.id = (current_setting('t.r_member')::jsonb ->> 'transaction_id')::uuid),
  tests.get_user_id('amy@consume.test'),
  'the consumption records the member who made it'
);
select is(
  (select array_agg(distinct t.actor_id) from public.credit_transactions t
    where t.consumption_id = (current_setting('t.r_member')::jsonb ->> 'transaction_id')::uuid),
  array[tests.get_user_id('amy@consume.test')],
  'the ledger rows of a member''s consumption record the member'
);
select throws_ok($$ select public.consume_credits('bbbbbbbb-0000-4000-8000-00000000000b', 'api_call_basic') $$,
  '42501', null, 'a member of A cannot consume B''s credits');
select throws_ok($$ select public.consume_credits('bbbbbbbb-0000-4000-8000-00000000000b', 'api_call_basic', 2, 'order-b') $$,
  '42501', null, 'a member of A cannot replay B''s idempotency key to read B''s result');
reset role;
select is(pg_temp.credit_state('bbbbbbbb-0000-4000-8000-00000000000b'), current_setting('t.b_state'),
  'a refused call for another organization changes nothing there');

-- ============================================================================
-- Stranger
-- ============================================================================

select set_config('t.a_state', pg_temp.credit_state('aaaaaaaa-0000-4000-8000-00000000000a'), true);
select tests.authenticate_as('sam@consume.test');

select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic') $$,
  '42501', null, 'a stranger cannot consume an organization''s credits');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, 'order-1') $$,
  '42501', null, 'a stranger cannot replay an organization''s idempotency key');
select throws_ok($$ select public.consume_credits(gen_random_uuid(), 'api_call_basic') $$,
  '42501', null, 'a stranger gets the same error for an organization that does not exist (existence does not leak)');
reset role;
select is(pg_temp.credit_state('aaaaaaaa-0000-4000-8000-00000000000a'), current_setting('t.a_state'),
  'a stranger''s refused calls change nothing');

-- ============================================================================
-- Anon
-- ============================================================================

select tests.clear_authentication();

select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic') $$,
  '42501', null, 'anon cannot call consume_credits');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, 'anon-1', '{}') $$,
  '42501', null, 'anon cannot call consume_credits with every argument given either');

-- ============================================================================
-- Service role
-- ============================================================================

select tests.authenticate_as_service_role();

select set_config('t.r_service', public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_premium', 1, 'service-1')::text, true);
select is((current_setting('t.r_service')::jsonb ->> 'credits_consumed')::integer, 5,
  'the service role can consume for an organization');
select is(
  (select c.actor_id from public.credit_consumptions c where c.id = (current_setting('t.r_service')::jsonb ->> 'transaction_id')::uuid),
  null,
  'a service role consumption records no member'
);
select lives_ok($$ select public.consume_credits('bbbbbbbb-0000-4000-8000-00000000000b', 'api_call_basic') $$,
  'the service role can consume for any organization');
select throws_ok($$ select public.consume_credits(gen_random_uuid(), 'api_call_basic') $$,
  'PT404', null, 'the service role consuming for an organization that does not exist gets not found');
select throws_ok($$ select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'retired_event') $$,
  'PT404', null, 'the service role cannot consume for an inactive event either');
select throws_ok($$ select public.consume_credits('bbbbbbbb-0000-4000-8000-00000000000b', 'ai_inference', 100) $$,
  'PT402', null, 'the service role cannot overdraw an organization either');
select is((public.get_credit_balance('aaaaaaaa-0000-4000-8000-00000000000a') ->> 'total')::integer, 980,
  'the organization''s balance reflects exactly the successful consumptions (986 - 1 - 5)');

select * from finish();
rollback;
