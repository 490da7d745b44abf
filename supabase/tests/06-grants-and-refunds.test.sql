-- The service role's money functions: grant_credits, allocate_subscription_credits (once per
-- invoice), claw_back_refund (once per refund) and record_billing_history (status only moves
-- forward). Each is keyed by a business id, so a replay has one effect, and none is callable
-- by a signed-in user or anon. Results are kept in transaction-local settings (`t.*`).

begin;
select plan(107);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('alice@grants.test');  -- owner of G
select tests.create_user('amy@grants.test');    -- member of G

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000000c1', 'G: grants'),
  ('00000000-0000-4000-8000-0000000000c2', 'H: another organization'),
  ('00000000-0000-4000-8000-0000000000c3', 'P: allocations'),
  ('00000000-0000-4000-8000-0000000000c4', 'Q: allocation paid in advance'),
  ('00000000-0000-4000-8000-0000000000c5', 'R: refunds'),
  ('00000000-0000-4000-8000-0000000000c6', 'S: subscription credits only'),
  ('00000000-0000-4000-8000-0000000000c7', 'U1: upgrade, invoices in order'),
  ('00000000-0000-4000-8000-0000000000c8', 'U2: upgrade, invoices out of order');
insert into public.organization_members (organization_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000000c1', tests.get_user_id('alice@grants.test'), 'owner'),
  ('00000000-0000-4000-8000-0000000000c1', tests.get_user_id('amy@grants.test'), 'member');

-- ============================================================================
-- Owner: none of these functions is theirs to call, not even for their own organization
-- ============================================================================

select tests.authenticate_as('alice@grants.test');

select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 100, 'purchased') $$,
  '42501', null, 'an owner cannot grant credits to their own organization');
select throws_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c1', 'in_x', 100, now(), now() + interval '30 days') $$,
  '42501', null, 'an owner cannot allocate subscription credits');
select throws_ok($$ select public.claw_back_refund('00000000-0000-4000-8000-0000000000c1', 're_x', 10) $$,
  '42501', null, 'an owner cannot run a refund claw-back');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_x', 'subscription_invoice', 'paid', 0, 'usd', now()) $$,
  '42501', null, 'an owner cannot write billing history');

-- ============================================================================
-- Member
-- ============================================================================

select tests.authenticate_as('amy@grants.test');

select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 100, 'purchased') $$,
  '42501', null, 'a member cannot grant credits');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_x', 'subscription_invoice', 'paid', 0, 'usd', now()) $$,
  '42501', null, 'a member cannot write billing history');

-- ============================================================================
-- Anon
-- ============================================================================

select tests.clear_authentication();

select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 100, 'purchased') $$,
  '42501', null, 'anon cannot grant credits');
select throws_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c1', 'in_x', 100, now(), now() + interval '30 days') $$,
  '42501', null, 'anon cannot allocate subscription credits');
select throws_ok($$ select public.claw_back_refund('00000000-0000-4000-8000-0000000000c1', 're_x', 10) $$,
  '42501', null, 'anon cannot run a refund claw-back');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_x', 'subscription_invoice', 'paid', 0, 'usd', now()) $$,
  '42501', null, 'anon cannot write billing history');

reset role;
select is((select count(*)::integer from public.credit_lots), 0, 'none of the refused calls created a credit lot');

-- ============================================================================
-- Service role: grant_credits
-- ============================================================================

select tests.authenticate_as_service_role();

select set_config('t.g1', public.grant_credits('00000000-0000-4000-8000-0000000000c1', 100, 'purchased', null, 'cs_g1')::text, true);
select is(
  array(select jsonb_object_keys(current_setting('t.g1')::jsonb) order by 1),
  array['balance', 'expires_at', 'granted', 'idempotent_replay', 'lot_id', 'source', 'transaction_id'],
  'a grant returns its lot, its ledger row, the grant and the new balance'
);
select is(
  current_setting('t.g1')::jsonb - 'lot_id' - 'transaction_id',
  '{"granted": 100, "source": "purchased", "expires_at": null, "idempotent_replay": false,
    "balance": {"total": 100, "purchased": 100, "subscription": 0, "next_expiry_at": null, "expiring_amount": 0}}'::jsonb,
  'the service role grants purchased credits that never expire'
);
select is(
  (select t.id from public.credit_transactions t where t.lot_id = (current_setting('t.g1')::jsonb ->> 'lot_id')::bigint and t.kind = 'grant'),
  (current_setting('t.g1')::jsonb ->> 'transaction_id')::bigint,
  'the returned transaction_id is the lot''s grant row in the ledger'
);

select set_config('t.g2', public.grant_credits('00000000-0000-4000-8000-0000000000c1', 100, 'purchased', null, 'cs_g1')::text, true);
select is(current_setting('t.g2')::jsonb -> 'idempotent_replay', 'true'::jsonb,
  'the same reference again is an idempotent replay');
select is(
  current_setting('t.g2')::jsonb - 'idempotent_replay',
  current_setting('t.g1')::jsonb - 'idempotent_replay',
  'a replay returns the first grant (same lot, same ledger row, same balance)'
);
select results_eq(
  $$ select count(distinct l.id)::integer, count(t.id)::integer from public.credit_lots l
       join public.credit_transactions t on t.lot_id = l.id
      where l.organization_id = '00000000-0000-4000-8000-0000000000c1' and l.reference = 'cs_g1' $$,
  $$ values (1, 1) $$,
  'the same reference twice grants once: one lot, one ledger row'
);
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 101, 'purchased', null, 'cs_g1') $$,
  'PT409', null, 'the same reference with another amount is a conflict');
select throws_ok(
  $$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 100, 'subscription', now() + interval '30 days', 'cs_g1') $$,
  'PT409', null, 'the same reference with another source is a conflict');
select is(
  public.grant_credits('00000000-0000-4000-8000-0000000000c2', 100, 'purchased', null, 'cs_g1') -> 'idempotent_replay',
  'false'::jsonb,
  'references are per organization: another organization''s grant with the same reference is new'
);

select lives_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 5, 'purchased') $$,
  'a grant without a reference succeeds');
select lives_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 5, 'purchased') $$,
  'the identical grant without a reference succeeds again');
select set_config('t.g3', public.grant_credits('00000000-0000-4000-8000-0000000000c1', 50, 'subscription', now() + interval '30 days', 'in_g1')::text, true);
select is(
  current_setting('t.g3')::jsonb - 'lot_id' - 'transaction_id' - 'balance',
  jsonb_build_object('granted', 50, 'source', 'subscription', 'expires_at', now() + interval '30 days', 'idempotent_replay', false),
  'the service role grants subscription credits expiring when it says'
);
select lives_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 1, 'purchased', null, repeat('r', 255)) $$,
  'a reference of 255 characters is accepted');

select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 0, 'purchased') $$,
  '22023', null, 'granting 0 credits is rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', -5, 'purchased') $$,
  '22023', null, 'granting a negative amount is rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', null, 'purchased') $$,
  '22023', null, 'granting a null amount is rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 10, 'gift') $$,
  '22023', null, 'an unknown source is rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 10, null) $$,
  '22023', null, 'a null source is rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 10, 'purchased', now() + interval '30 days') $$,
  '22023', null, 'purchased credits with an expiry are rejected (they never expire)');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 10, 'subscription') $$,
  '22023', null, 'subscription credits without an expiry are rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 10, 'subscription', now() - interval '1 day') $$,
  '22023', null, 'subscription credits that have already expired are rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 10, 'subscription', now()) $$,
  '22023', null, 'subscription credits expiring this very instant are rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 10, 'purchased', null, '') $$,
  '22023', null, 'an empty reference is rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 10, 'purchased', null, '   ') $$,
  '22023', null, 'a blank reference is rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 10, 'purchased', null, repeat('r', 256)) $$,
  '22023', null, 'a reference of 256 characters is rejected');
select throws_ok($$ select public.grant_credits('00000000-0000-4000-8000-0000000000c1', 10, 'purchased', null, E'cs\n1') $$,
  '22023', null, 'a reference with control characters is rejected');
select throws_ok($$ select public.grant_credits(gen_random_uuid(), 10, 'purchased') $$,
  'PT404', null, 'granting to an organization that does not exist is not found');
select is((public.get_credit_balance('00000000-0000-4000-8000-0000000000c1') ->> 'total')::integer, 161,
  'only the valid grants added credit (100 once, 5 twice, 50, 1)');

-- ============================================================================
-- Service role: allocate_subscription_credits
-- ============================================================================

select set_config('t.p1',
  public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_p1', 1000,
    now() - interval '10 days', now() + interval '20 days')::text, true);
select is(
  current_setting('t.p1')::jsonb - 'lot_id' - 'transaction_id' - 'balance',
  jsonb_build_object('granted', 1000, 'source', 'subscription', 'expires_at', now() + interval '20 days', 'idempotent_replay', false),
  'a paid period''s allocation grants its credits, expiring at the period end'
);
select results_eq(
  $$ select l.source::text, l.granted, l.remaining, l.expires_at, l.period_start from public.credit_lots l
      where l.organization_id = '00000000-0000-4000-8000-0000000000c3' and l.reference = 'in_p1' $$,
  $$ values ('subscription', 1000, 1000, now() + interval '20 days', now() - interval '10 days') $$,
  'the allocation''s lot is keyed by the invoice id and remembers its period'
);
select is(
  public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_p1', 1000,
    now() - interval '10 days', now() + interval '20 days') - 'idempotent_replay' - 'balance',
  current_setting('t.p1')::jsonb - 'idempotent_replay' - 'balance',
  'the same invoice again returns the first allocation'
);
select is(
  (select count(*)::integer from public.credit_lots l
    where l.organization_id = '00000000-0000-4000-8000-0000000000c3' and l.reference = 'in_p1'),
  1,
  'the same invoice twice allocates once'
);
select throws_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_p1', 999,
       now() - interval '10 days', now() + interval '20 days') $$,
  'PT409', null, 'the same invoice with other credits is a conflict');
select throws_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_p1', 1000,
       now() - interval '10 days', now() + interval '21 days') $$,
  'PT409', null, 'the same invoice with another period end is a conflict');

select public.consume_credits('00000000-0000-4000-8000-0000000000c3', 'api_call_basic', 300);
select set_config('t.p2',
  public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_p2', 1000,
    now() - interval '1 hour', now() + interval '30 days')::text, true);
select ok(
  (select l.expires_at between now() - interval '1 hour' and now() from public.credit_lots l where l.reference = 'in_p1'),
  'the earlier period''s credits expire where the new period starts (at the latest, when its invoice arrives)'
);
select results_eq(
  $$ select t.kind::text, t.amount from public.credit_transactions t
       join public.credit_lots l on l.id = t.lot_id
      where l.reference = 'in_p1' order by t.id $$,
  $$ values ('grant', 1000), ('consumption', -300), ('expiry', -700) $$,
  'the new period''s allocation writes the expiry of what was left of the earlier period'
);
select is(
  public.get_credit_balance('00000000-0000-4000-8000-0000000000c3') - 'next_expiry_at' - 'expiring_amount' - 'reserved',
  '{"total": 1000, "purchased": 0, "subscription": 1000}'::jsonb,
  'after a renewal only the new period''s allowance is spendable'
);

-- Strictly after: this transaction's consumption and allocation share one now(), though the
-- consumption came first.
select is_empty(
  $$ select t.id from public.credit_transactions t join public.credit_lots l on l.id = t.lot_id
      where t.organization_id = '00000000-0000-4000-8000-0000000000c3'
        and t.kind = 'consumption' and t.created_at > l.expires_at $$,
  'no consumption is recorded after its lot''s expiry, even once a renewal cuts the earlier period short'
);

select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c4', 'in_q1', 500,
  now() - interval '5 days', now() + interval '25 days');
select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c4', 'in_q2', 500,
  now() + interval '1 day', now() + interval '31 days');
select is(
  public.get_credit_balance('00000000-0000-4000-8000-0000000000c4') - 'reserved',
  jsonb_build_object('total', 1000, 'purchased', 0, 'subscription', 1000,
                     'next_expiry_at', now() + interval '1 day', 'expiring_amount', 500),
  'a period paid in advance cuts the current period''s credits off at its start, not before'
);

select set_config('t.p0',
  public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_p0', 400,
    now() - interval '60 days', now() - interval '30 days')::text, true);
select is((current_setting('t.p0')::jsonb ->> 'granted')::integer, 400,
  'a late invoice for a period already over still reports its allocation');
select results_eq(
  $$ select t.kind::text, t.amount from public.credit_transactions t
      where t.lot_id = (current_setting('t.p0')::jsonb ->> 'lot_id')::bigint order by t.id $$,
  $$ values ('grant', 400), ('expiry', -400) $$,
  'a late invoice for a period already over grants and expires at once, visibly in the ledger'
);
select results_eq(
  $$ select l.remaining, l.expires_at from public.credit_lots l where l.reference = 'in_p2' $$,
  $$ values (1000, now() + interval '30 days') $$,
  'a late invoice for an old period does not shorten the current period'
);
select is((public.get_credit_balance('00000000-0000-4000-8000-0000000000c3') ->> 'total')::integer, 1000,
  'a late invoice for an old period adds nothing spendable');

-- An upgrade an hour into a period: Stripe invoices a new period that overlaps the first.
select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c7', 'in_u1', 100,
  now() - interval '2 hours', now() + interval '30 days' - interval '2 hours');
select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c7', 'in_u2', 500,
  now() - interval '1 hour', now() + interval '30 days' - interval '1 hour');
select is((public.get_credit_balance('00000000-0000-4000-8000-0000000000c7') ->> 'total')::integer, 500,
  'after an upgrade only the upgraded period''s allowance is spendable');
select lives_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c7', 'in_u1', 100,
       now() - interval '2 hours', now() + interval '30 days' - interval '2 hours') $$,
  'a redelivered pre-upgrade invoice after the upgrade''s allocation is a replay, not a conflict'
);
select is((public.get_credit_balance('00000000-0000-4000-8000-0000000000c7') ->> 'total')::integer, 500,
  'a redelivered pre-upgrade invoice grants nothing');

select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c8', 'in_u2', 500,
  now() - interval '1 hour', now() + interval '30 days' - interval '1 hour');
select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c8', 'in_u1', 100,
  now() - interval '2 hours', now() + interval '30 days' - interval '2 hours');
select is((public.get_credit_balance('00000000-0000-4000-8000-0000000000c8') ->> 'total')::integer, 500,
  'the pre-upgrade invoice delivered after the upgrade''s leaves the same spendable balance as in order');

select set_config('t.free',
  public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_free', 0,
    now(), now() + interval '30 days')::text, true);
select is(
  (current_setting('t.free')::jsonb ->> 'granted')::integer || ' ' || coalesce(current_setting('t.free')::jsonb ->> 'lot_id', 'none'),
  '0 none',
  'an invoice with 0 credits allocates nothing'
);
select is_empty(
  $$ select 1 from public.credit_lots l where l.reference = 'in_free'
     union all
     select 1 from public.credit_transactions t where t.reference = 'in_free' $$,
  'an invoice with 0 credits writes no lot and no ledger row'
);

select throws_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', null, 10, now(), now() + interval '30 days') $$,
  '22023', null, 'an allocation without an invoice id is rejected');
select throws_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', '', 10, now(), now() + interval '30 days') $$,
  '22023', null, 'an allocation with an empty invoice id is rejected');
select throws_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_bad', -1, now(), now() + interval '30 days') $$,
  '22023', null, 'an allocation of negative credits is rejected');
select throws_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_bad', null, now(), now() + interval '30 days') $$,
  '22023', null, 'an allocation of null credits is rejected');
select throws_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_bad', 10, now(), now()) $$,
  '22023', null, 'an allocation for a period that ends when it starts is rejected');
select throws_ok(
  $$ select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000c3', 'in_bad', 10, null, now() + interval '30 days') $$,
  '22023', null, 'an allocation without a period start is rejected');
select throws_ok(
  $$ select public.allocate_subscription_credits(gen_random_uuid(), 'in_bad', 10, now(), now() + interval '30 days') $$,
  'PT404', null, 'an allocation for an organization that does not exist is not found');

-- ============================================================================
-- Service role: claw_back_refund
-- ============================================================================

select public.grant_credits('00000000-0000-4000-8000-0000000000c5', 100, 'purchased', null, 'cs_r1');
select public.grant_credits('00000000-0000-4000-8000-0000000000c5', 50, 'purchased', null, 'cs_r2');
select public.grant_credits('00000000-0000-4000-8000-0000000000c5', 200, 'subscription', now() + interval '30 days', 'in_r');

select set_config('t.c1', public.claw_back_refund('00000000-0000-4000-8000-0000000000c5', 're_1', 30, 'cs_r2')::text, true);
select is(
  array(select jsonb_object_keys(current_setting('t.c1')::jsonb) order by 1),
  array['balance', 'clawed_back', 'idempotent_replay', 'refund_id', 'requested', 'shortfall'],
  'a claw-back reports what was requested, what was removed, the shortfall and the balance'
);
select is(
  current_setting('t.c1')::jsonb - 'balance',
  '{"refund_id": "re_1", "requested": 30, "clawed_back": 30, "shortfall": 0, "idempotent_replay": false}'::jsonb,
  'a refund within the purchase''s remaining credits claws back in full'
);
select results_eq(
  $$ select l.reference, l.remaining from public.credit_lots l
      where l.organization_id = '00000000-0000-4000-8000-0000000000c5' order by l.reference $$,
  $$ values ('cs_r1', 100), ('cs_r2', 20), ('in_r', 200) $$,
  'a claw-back takes from the refunded purchase''s lot first, even when it is not the oldest'
);
select results_eq(
  $$ select t.kind::text, t.source::text, t.amount, t.reference from public.credit_transactions t
      where t.organization_id = '00000000-0000-4000-8000-0000000000c5' and t.kind = 'refund' $$,
  $$ values ('refund', 'purchased', -30, 're_1') $$,
  'a claw-back is a negative refund row in the ledger, keyed by the refund id'
);
select is(
  public.claw_back_refund('00000000-0000-4000-8000-0000000000c5', 're_1', 30, 'cs_r2') - 'balance',
  '{"refund_id": "re_1", "requested": 30, "clawed_back": 30, "shortfall": 0, "idempotent_replay": true}'::jsonb,
  'the same refund again returns the first claw-back as a replay'
);
select is(
  (select count(*)::integer from public.credit_transactions t
    where t.organization_id = '00000000-0000-4000-8000-0000000000c5' and t.kind = 'refund'),
  1,
  'the same refund twice claws back once'
);
select throws_ok($$ select public.claw_back_refund('00000000-0000-4000-8000-0000000000c5', 're_1', 31, 'cs_r2') $$,
  'PT409', null, 'the same refund with other credits is a conflict');
select throws_ok($$ select public.claw_back_refund('00000000-0000-4000-8000-0000000000c5', 're_1', 30, 'cs_r1') $$,
  'PT409', null, 'the same refund for another purchase is a conflict');

select set_config('t.c2', public.claw_back_refund('00000000-0000-4000-8000-0000000000c5', 're_2', 200, 'cs_r2')::text, true);
select is(
  current_setting('t.c2')::jsonb - 'balance',
  '{"refund_id": "re_2", "requested": 200, "clawed_back": 120, "shortfall": 80, "idempotent_replay": false}'::jsonb,
  'a refund larger than the purchased credits left claws back what is left and reports the shortfall'
);
select results_eq(
  $$ select l.reference, l.remaining from public.credit_lots l
      where l.organization_id = '00000000-0000-4000-8000-0000000000c5' order by l.reference $$,
  $$ values ('cs_r1', 0), ('cs_r2', 0), ('in_r', 200) $$,
  'a claw-back never goes below zero and never touches subscription credits'
);
select is(
  (current_setting('t.c2')::jsonb -> 'balance') - 'next_expiry_at' - 'expiring_amount',
  '{"total": 200, "purchased": 0, "subscription": 200}'::jsonb,
  'the claw-back''s reported balance keeps the subscription credits'
);
select results_eq(
  $$ select c.refund_id, c.purchase_reference, c.requested, c.clawed_back, c.shortfall from public.credit_clawbacks c
      where c.organization_id = '00000000-0000-4000-8000-0000000000c5' order by c.refund_id $$,
  $$ values ('re_1', 'cs_r2', 30, 30, 0), ('re_2', 'cs_r2', 200, 120, 80) $$,
  'every claw-back is recorded with its shortfall'
);

select public.grant_credits('00000000-0000-4000-8000-0000000000c6', 40, 'subscription', now() + interval '30 days', 'in_s');
select is(
  public.claw_back_refund('00000000-0000-4000-8000-0000000000c6', 're_s', 10) - 'balance',
  '{"refund_id": "re_s", "requested": 10, "clawed_back": 0, "shortfall": 10, "idempotent_replay": false}'::jsonb,
  'a refund for an organization with no purchased credits claws back nothing and records the whole shortfall'
);
select is((public.get_credit_balance('00000000-0000-4000-8000-0000000000c6') ->> 'subscription')::integer, 40,
  'the subscription credits are untouched by a refund');

select throws_ok($$ select public.claw_back_refund('00000000-0000-4000-8000-0000000000c5', null, 10) $$,
  '22023', null, 'a claw-back without a refund id is rejected');
select throws_ok($$ select public.claw_back_refund('00000000-0000-4000-8000-0000000000c5', '', 10) $$,
  '22023', null, 'a claw-back with an empty refund id is rejected');
select throws_ok($$ select public.claw_back_refund('00000000-0000-4000-8000-0000000000c5', 're_bad', 0) $$,
  '22023', null, 'a claw-back of 0 credits is rejected');
select throws_ok($$ select public.claw_back_refund('00000000-0000-4000-8000-0000000000c5', 're_bad', null) $$,
  '22023', null, 'a claw-back of null credits is rejected');
select throws_ok($$ select public.claw_back_refund('00000000-0000-4000-8000-0000000000c5', 're_bad', 10, '   ') $$,
  '22023', null, 'a claw-back with a blank purchase reference is rejected');
select throws_ok($$ select public.claw_back_refund(gen_random_uuid(), 're_bad', 10) $$,
  'PT404', null, 'a claw-back for an organization that does not exist is not found');

-- ============================================================================
-- Service role: record_billing_history
-- ============================================================================

select set_config('t.h1',
  public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h1', 'subscription_invoice', 'paid', 1900, 'USD',
    now(), 'Starter, monthly', '{"invoice_url": "https://stripe.test/invoices/in_h1"}')::text, true);
select results_eq(
  $$ select h.organization_id, h.kind::text, h.status::text, h.amount, h.currency, h.description, h.invoice_url
       from public.billing_history h where h.stripe_reference = 'in_h1' $$,
  $$ values ('00000000-0000-4000-8000-0000000000c1'::uuid, 'subscription_invoice', 'paid', 1900::bigint, 'usd',
             'Starter, monthly', 'https://stripe.test/invoices/in_h1') $$,
  'the service role records a paid invoice (currency stored in lowercase)'
);
select is(
  public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h1', 'subscription_invoice', 'failed', 0, 'usd', now()),
  current_setting('t.h1')::uuid,
  'recording the same Stripe object again updates its row'
);
select results_eq(
  $$ select h.status::text, h.amount, h.description, h.invoice_url from public.billing_history h where h.stripe_reference = 'in_h1' $$,
  $$ values ('paid', 1900::bigint, 'Starter, monthly', 'https://stripe.test/invoices/in_h1') $$,
  'a late "failed" never moves a paid invoice back, nor overwrites its amount, description or links'
);
select lives_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h1', 'subscription_invoice', 'refunded', 1900, 'usd', now()) $$,
  'a paid invoice can be recorded as refunded');
select is((select h.status::text from public.billing_history h where h.stripe_reference = 'in_h1'), 'refunded',
  'a paid invoice moves forward to refunded');

select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h2', 'subscription_invoice', 'failed', 4900, 'usd', now());
select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h2', 'subscription_invoice', 'paid', 4900, 'usd', now(),
  '', '{"receipt_url": "https://stripe.test/receipts/in_h2"}');
select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h2', 'subscription_invoice', 'paid', 4900, 'usd', now());
select results_eq(
  $$ select h.status::text, h.receipt_url from public.billing_history h where h.stripe_reference = 'in_h2' $$,
  $$ values ('paid', 'https://stripe.test/receipts/in_h2') $$,
  'a failed invoice that is then paid becomes paid, and its links survive a later delivery without them'
);
select is(
  (select count(*)::integer from public.billing_history h where h.organization_id = '00000000-0000-4000-8000-0000000000c1'),
  2,
  'one row per Stripe object, however often it is recorded'
);

select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c2', 'in_h1', 'subscription_invoice', 'paid', 1900, 'usd', now()) $$,
  'PT409', null, 'another organization cannot record a Stripe object that belongs to the first');
select is((select h.organization_id from public.billing_history h where h.stripe_reference = 'in_h1'),
  '00000000-0000-4000-8000-0000000000c1'::uuid,
  'the Stripe object stays with its organization');
select throws_ok(
  $$ select public.record_billing_history(gen_random_uuid(), 'in_h9', 'subscription_invoice', 'paid', 1900, 'usd', now()) $$,
  'PT404', null, 'history for an organization that does not exist is not found');

select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in h1', 'subscription_invoice', 'paid', 1, 'usd', now()) $$,
  '22023', null, 'a Stripe reference with a space is rejected');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'ab', 'subscription_invoice', 'paid', 1, 'usd', now()) $$,
  '22023', null, 'a Stripe reference too short to be an id is rejected');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', null, 'subscription_invoice', 'paid', 1, 'usd', now()) $$,
  '22023', null, 'a null Stripe reference is rejected');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h3', 'donation', 'paid', 1, 'usd', now()) $$,
  '22023', null, 'an unknown history kind is rejected');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h3', 'subscription_invoice', 'lost', 1, 'usd', now()) $$,
  '22023', null, 'an unknown status is rejected');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h3', 'subscription_invoice', 'paid', -1, 'usd', now()) $$,
  '22023', null, 'a negative amount is rejected');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h3', 'subscription_invoice', 'paid', 1, 'us', now()) $$,
  '22023', null, 'a currency that is not a three-letter code is rejected');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h3', 'subscription_invoice', 'paid', 1, 'usd', null) $$,
  '22023', null, 'history without an occurred_at is rejected');
select throws_ok(
  $$ select public.record_billing_history('00000000-0000-4000-8000-0000000000c1', 'in_h3', 'subscription_invoice', 'paid', 1, 'usd', now(), '', '[]') $$,
  '22023', null, 'details that are not a JSON object are rejected');
select is_empty($$ select 1 from public.billing_history h where h.stripe_reference = 'in_h3' $$,
  'no rejected call wrote history');

select * from finish();
rollback;
