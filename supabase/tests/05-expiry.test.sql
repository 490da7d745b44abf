-- Expiry: subscription credits stop being spendable at the instant of expires_at, whether or
-- not the sweep has run. now() is fixed for the whole transaction, so "expires exactly now"
-- and "expires one microsecond from now" are exact boundaries here. Lots already past their
-- expiry come from tests.add_lot, since grant_credits refuses them.

begin;
select plan(30);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('alice@expiry.test');  -- owner of every organization here

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000000e1', 'Expires exactly now'),
  ('00000000-0000-4000-8000-0000000000e2', 'Expires a microsecond from now'),
  ('00000000-0000-4000-8000-0000000000e3', 'Expired, not yet swept'),
  ('00000000-0000-4000-8000-0000000000e4', 'Swept'),
  ('00000000-0000-4000-8000-0000000000e5', 'Also swept'),
  ('00000000-0000-4000-8000-0000000000e6', 'Next expiry'),
  ('00000000-0000-4000-8000-0000000000e7', 'Empty'),
  ('00000000-0000-4000-8000-0000000000e8', 'Purchased only'),
  ('00000000-0000-4000-8000-0000000000e9', 'Granted after an expiry');
insert into public.organization_members (organization_id, user_id, role)
select o.id, tests.get_user_id('alice@expiry.test'), 'owner' from public.organizations o
 where o.id::text like '00000000-0000-4000-8000-0000000000e_';

select tests.add_lot('00000000-0000-4000-8000-0000000000e1', 'subscription', 10, now());
select set_config('t.e2_lot', tests.add_lot('00000000-0000-4000-8000-0000000000e2', 'subscription', 10, now() + interval '1 microsecond')::text, true);

-- Expiring first, so the expired lot is the first one precedence would reach for.
select public.set_credit_precedence('00000000-0000-4000-8000-0000000000e3', 'expiring_first');
-- Grants sweep the organization's expired lots first, so the expired lot comes after the grant.
select public.grant_credits('00000000-0000-4000-8000-0000000000e3', 10, 'purchased', null, 'cs_e3');
select set_config('t.e3_lot', tests.add_lot('00000000-0000-4000-8000-0000000000e3', 'subscription', 50, now() - interval '1 day')::text, true);

select public.grant_credits('00000000-0000-4000-8000-0000000000e4', 40, 'subscription', now() + interval '1 day', 'in_e4');
select tests.add_lot('00000000-0000-4000-8000-0000000000e4', 'subscription', 30, now() - interval '2 days');
select tests.add_lot('00000000-0000-4000-8000-0000000000e4', 'subscription', 20, now() - interval '1 hour');

select tests.add_lot('00000000-0000-4000-8000-0000000000e5', 'subscription', 5, now());

select public.grant_credits('00000000-0000-4000-8000-0000000000e6', 100, 'purchased', null, 'cs_e6');
select public.grant_credits('00000000-0000-4000-8000-0000000000e6', 10, 'subscription', now() + interval '5 days', 'in_e6_a');
select public.grant_credits('00000000-0000-4000-8000-0000000000e6', 15, 'subscription', now() + interval '5 days', 'in_e6_b');
select public.grant_credits('00000000-0000-4000-8000-0000000000e6', 20, 'subscription', now() + interval '10 days', 'in_e6_c');
select tests.add_lot('00000000-0000-4000-8000-0000000000e6', 'subscription', 7, now() - interval '1 day');

select public.grant_credits('00000000-0000-4000-8000-0000000000e8', 20, 'purchased', null, 'cs_e8');

select set_config('t.e9_lot', tests.add_lot('00000000-0000-4000-8000-0000000000e9', 'subscription', 8, now() - interval '1 day')::text, true);
select public.grant_credits('00000000-0000-4000-8000-0000000000e9', 3, 'purchased', null, 'cs_e9');

-- ============================================================================
-- Owner: boundaries and lazy expiry
-- ============================================================================

select tests.authenticate_as('alice@expiry.test');

select is((public.get_credit_balance('00000000-0000-4000-8000-0000000000e1') ->> 'total')::integer, 0,
  'a lot whose expires_at is exactly now is not counted');
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000000e1', 'api_call_basic') $$,
  'PT402', null, 'a lot whose expires_at is exactly now cannot be spent');
select is((public.get_credit_balance('00000000-0000-4000-8000-0000000000e2') ->> 'total')::integer, 10,
  'a lot expiring one microsecond from now is counted');
select is((public.consume_credits('00000000-0000-4000-8000-0000000000e2', 'api_call_basic', 9) ->> 'subscription_used')::integer, 9,
  'a lot expiring one microsecond from now can be spent');

select is(
  public.get_credit_balance('00000000-0000-4000-8000-0000000000e3') - 'next_expiry_at' - 'expiring_amount',
  '{"total": 10, "purchased": 10, "subscription": 0, "reserved": 0}'::jsonb,
  'credits past their expiry are not counted even though no sweep has run'
);
select is(
  (select sum(t.amount)::integer from public.credit_transactions t where t.organization_id = '00000000-0000-4000-8000-0000000000e3'),
  60,
  'until its expiry row is written, an expired lot is still in the ledger sum (the contract''s one exception)'
);
select throws_ok($$ select public.consume_credits('00000000-0000-4000-8000-0000000000e3', 'api_call_basic', 11) $$,
  'PT402', null, 'expired credits are never spendable, even before the sweep and even expiring first');
select is(
  public.consume_credits('00000000-0000-4000-8000-0000000000e3', 'api_call_basic', 10) - 'transaction_id' - 'idempotent_replay',
  '{"credits_consumed": 10, "purchased_used": 10, "subscription_used": 0, "balance": {"total": 0, "purchased": 0, "subscription": 0}}'::jsonb,
  'a consumption takes only unexpired credits'
);
select results_eq(
  $$ select t.kind::text, t.source::text, t.amount from public.credit_transactions t
      where t.lot_id = current_setting('t.e3_lot')::bigint order by t.id $$,
  $$ values ('grant', 'subscription', 50), ('expiry', 'subscription', -50) $$,
  'a consumption writes the expiry row of the expired lot it skipped'
);
select is(
  (select l.remaining from public.credit_lots l where l.id = current_setting('t.e3_lot')::bigint),
  0,
  'the lazily expired lot is emptied'
);
select is(
  (select sum(t.amount)::integer from public.credit_transactions t where t.organization_id = '00000000-0000-4000-8000-0000000000e3'),
  0,
  'once the expiry row is written, the ledger sum equals the balance again'
);
select results_eq(
  $$ select t.kind::text, t.amount from public.credit_transactions t
      where t.lot_id = current_setting('t.e9_lot')::bigint order by t.id $$,
  $$ values ('grant', 8), ('expiry', -8) $$,
  'a grant writes the expiry rows of the organization''s lots that expired before it'
);

-- ============================================================================
-- Owner: what expires next
-- ============================================================================

select is(
  public.get_credit_balance('00000000-0000-4000-8000-0000000000e6'),
  jsonb_build_object('total', 145, 'purchased', 100, 'subscription', 45,
                     'next_expiry_at', now() + interval '5 days', 'expiring_amount', 25, 'reserved', 0),
  'next_expiry_at is the earliest unexpired expiry and expiring_amount all that expires then (expired lots ignored)'
);
select is(
  array(select jsonb_object_keys(public.get_credit_balance('00000000-0000-4000-8000-0000000000e6')) order by 1),
  array['expiring_amount', 'next_expiry_at', 'purchased', 'reserved', 'subscription', 'total'],
  'get_credit_balance returns exactly the contract''s keys'
);
select is(
  public.get_credit_balance('00000000-0000-4000-8000-0000000000e7'),
  '{"total": 0, "purchased": 0, "subscription": 0, "reserved": 0, "next_expiry_at": null, "expiring_amount": 0}'::jsonb,
  'an organization without credits has a zero balance and nothing expiring'
);
select is(
  public.get_credit_balance('00000000-0000-4000-8000-0000000000e8'),
  '{"total": 20, "purchased": 20, "subscription": 0, "reserved": 0, "next_expiry_at": null, "expiring_amount": 0}'::jsonb,
  'purchased credits never expire: no next expiry'
);

select throws_ok($$ select public.expire_credits() $$, '42501', null,
  'a signed-in user cannot run the expiry sweep');

-- ============================================================================
-- Anon
-- ============================================================================

select tests.clear_authentication();

select throws_ok($$ select public.expire_credits() $$, '42501', null,
  'anon cannot run the expiry sweep');

-- ============================================================================
-- Service role: the sweep
-- ============================================================================

select tests.authenticate_as_service_role();
select set_config('t.e6_before', public.get_credit_balance('00000000-0000-4000-8000-0000000000e6')::text, true);

select is(public.expire_credits(), 5,
  'the sweep expires every lot past its expiry in every organization and returns how many (e1, e4 twice, e5, e6)');
select results_eq(
  $$ select l.granted, t.amount, t.source::text from public.credit_transactions t join public.credit_lots l on l.id = t.lot_id
      where t.organization_id = '00000000-0000-4000-8000-0000000000e4' and t.kind = 'expiry' order by l.granted $$,
  $$ values (20, -20, 'subscription'), (30, -30, 'subscription') $$,
  'each expiry row removes what was left of its lot, as a negative amount'
);
select results_eq(
  $$ select l.granted, l.remaining from public.credit_lots l
      where l.organization_id = '00000000-0000-4000-8000-0000000000e4' order by l.granted $$,
  $$ values (20, 0), (30, 0), (40, 40) $$,
  'the sweep empties the expired lots and leaves the live one alone'
);
select is(
  (select t.balance_after from public.credit_transactions t
    where t.organization_id = '00000000-0000-4000-8000-0000000000e4' order by t.id desc limit 1),
  40,
  'after the sweep the last ledger row''s balance_after is the live balance'
);
select is(
  (select l.remaining from public.credit_lots l where l.organization_id = '00000000-0000-4000-8000-0000000000e1'),
  0,
  'a lot whose expires_at is exactly now is swept'
);
select is(
  (select l.remaining from public.credit_lots l where l.id = current_setting('t.e2_lot')::bigint),
  1,
  'a lot expiring one microsecond from now is not swept'
);
select is(public.get_credit_balance('00000000-0000-4000-8000-0000000000e6')::text, current_setting('t.e6_before'),
  'the sweep does not change any balance: expired credits were never counted');

select set_config('t.expiry_rows', (select count(*) from public.credit_transactions t where t.kind = 'expiry')::text, true);
select is(public.expire_credits(), 0,
  'a second sweep finds nothing to expire');
select is((select count(*) from public.credit_transactions t where t.kind = 'expiry')::text, current_setting('t.expiry_rows'),
  'a second sweep writes no ledger row');
select is(
  (select count(*)::integer from public.credit_transactions t where t.kind = 'expiry'),
  7,
  'exactly one expiry row per expired lot was written (one by a consumption, one by a grant, five by the sweep)'
);
select is_empty(
  $$ select o.id from public.organizations o
      where o.id::text like '00000000-0000-4000-8000-0000000000e_'
        and coalesce((select sum(t.amount) from public.credit_transactions t where t.organization_id = o.id), 0)
            <> (public.get_credit_balance(o.id) ->> 'total')::bigint $$,
  'after the sweep every organization''s ledger sums to its balance'
);

select is(
  (public.grant_credits('00000000-0000-4000-8000-0000000000e4', 5, 'subscription', now() + interval '1 microsecond', 'in_e4_boundary') -> 'balance' ->> 'total')::integer,
  45,
  'grant_credits accepts an expiry one microsecond from now'
);

select * from finish();
rollback;
