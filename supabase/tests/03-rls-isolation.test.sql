-- Tenant isolation: two organizations, A and B, each with a row in every billing table. A
-- member of A sees exactly A's rows (with or without a filter on B, counted or listed),
-- writes nothing directly, not even in A; strangers see nothing whatever their user
-- metadata claims; anon reads only the active pricing catalog.

begin;
select plan(78);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('alice@rls.test');  -- owner of A
select tests.create_user('amy@rls.test');    -- member of A
select tests.create_user('bob@rls.test');    -- owner of B
select tests.create_user('sam@rls.test');    -- member of nothing

insert into public.organizations (id, name) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'Org A'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'Org B');
insert into public.organization_members (organization_id, user_id, role) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', tests.get_user_id('alice@rls.test'), 'owner'),
  ('aaaaaaaa-0000-4000-8000-00000000000a', tests.get_user_id('amy@rls.test'), 'member'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', tests.get_user_id('bob@rls.test'), 'owner');

-- A retired plan (B still subscribes to it), a retired event and a retired credit pack.
insert into public.subscription_plans (code, name, monthly_unit_amount, annual_unit_amount, monthly_credits, annual_credits, is_active)
values ('legacy', 'Legacy', 900, 9000, 100, 1200, false);
insert into public.credit_events (event_key, name, credit_cost, is_active) values ('retired_event', 'Retired event', 3, false);
insert into public.credit_products (code, name, credits, unit_amount, is_active) values ('retired_pack', 'Retired pack', 10, 100, false);

insert into public.organization_subscriptions
  (organization_id, plan_id, billing_interval, status, stripe_subscription_id, stripe_customer_id,
   current_period_start, current_period_end)
values
  ('aaaaaaaa-0000-4000-8000-00000000000a', (select p.id from public.subscription_plans p where p.code = 'starter'),
   'month', 'active', 'sub_rls_a', 'cus_rls_a', now(), now() + interval '30 days'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', (select p.id from public.subscription_plans p where p.code = 'legacy'),
   'month', 'active', 'sub_rls_b', 'cus_rls_b', now(), now() + interval '30 days');

select public.grant_credits('aaaaaaaa-0000-4000-8000-00000000000a', 100, 'purchased', null, 'cs_rls_a');
select public.grant_credits('aaaaaaaa-0000-4000-8000-00000000000a', 50, 'subscription', now() + interval '30 days', 'in_rls_a');
select public.grant_credits('bbbbbbbb-0000-4000-8000-00000000000b', 200, 'purchased', null, 'cs_rls_b');
select public.grant_credits('bbbbbbbb-0000-4000-8000-00000000000b', 70, 'subscription', now() + interval '30 days', 'in_rls_b');
select public.consume_credits('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 3, 'use-a');
select public.consume_credits('bbbbbbbb-0000-4000-8000-00000000000b', 'api_call_basic', 4, 'use-b');
select public.claw_back_refund('aaaaaaaa-0000-4000-8000-00000000000a', 're_rls_a', 10, 'cs_rls_a');
select public.claw_back_refund('bbbbbbbb-0000-4000-8000-00000000000b', 're_rls_b', 20, 'cs_rls_b');
select public.record_billing_history('aaaaaaaa-0000-4000-8000-00000000000a', 'in_rls_a', 'subscription_invoice', 'paid', 1900, 'usd', now());
select public.record_billing_history('bbbbbbbb-0000-4000-8000-00000000000b', 'in_rls_b', 'subscription_invoice', 'paid', 900, 'usd', now());

-- Everything in the billing tables, to show at the end that no write attempt changed anything.
create function pg_temp.billing_fingerprint() returns text
language sql
as $$
  select md5(concat_ws('|',
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.organizations t),
    (select jsonb_agg(to_jsonb(t) order by t.organization_id, t.user_id)::text from public.organization_members t),
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.organization_subscriptions t),
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.credit_lots t),
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.credit_consumptions t),
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.credit_transactions t),
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.credit_clawbacks t),
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.billing_history t),
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.subscription_plans t),
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.credit_events t),
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.credit_products t)
  ));
$$;
select set_config('t.fingerprint', pg_temp.billing_fingerprint(), true);
select set_config('t.active_plans', (select count(*) from public.subscription_plans where is_active)::text, true);
select set_config('t.active_events', (select count(*) from public.credit_events where is_active)::text, true);
select set_config('t.active_products', (select count(*) from public.credit_products where is_active)::text, true);

-- ============================================================================
-- Member of A: reads
-- ============================================================================

select tests.authenticate_as('amy@rls.test');

select results_eq(
  $$ select o.id, count(*)::integer from public.organizations o group by 1 $$,
  $$ values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 1) $$,
  'a member of A sees A and no other organization'
);
select is(
  (select count(*)::integer from public.organizations o where o.id = 'bbbbbbbb-0000-4000-8000-00000000000b'),
  0,
  'a member of A asking for B by id counts no organization'
);
select results_eq(
  $$ select m.organization_id, count(*)::integer from public.organization_members m group by 1 $$,
  $$ values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 2) $$,
  'a member of A sees A''s two memberships and no other'
);
select is(
  (select count(*)::integer from public.organization_members m where m.organization_id = 'bbbbbbbb-0000-4000-8000-00000000000b'),
  0,
  'a member of A filtering on B counts none of B''s memberships'
);
select results_eq(
  $$ select s.organization_id, count(*)::integer from public.organization_subscriptions s group by 1 $$,
  $$ values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 1) $$,
  'a member of A sees A''s subscription and no other'
);
select is(
  (select count(*)::integer from public.organization_subscriptions s where s.organization_id = 'bbbbbbbb-0000-4000-8000-00000000000b'),
  0,
  'a member of A filtering on B counts none of B''s subscriptions'
);
select results_eq(
  $$ select l.organization_id, count(*)::integer from public.credit_lots l group by 1 $$,
  $$ values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 2) $$,
  'a member of A sees A''s two credit lots and no other'
);
select is(
  (select count(*)::integer from public.credit_lots l where l.organization_id = 'bbbbbbbb-0000-4000-8000-00000000000b'),
  0,
  'a member of A filtering on B counts none of B''s credit lots'
);
select results_eq(
  $$ select c.organization_id, count(*)::integer from public.credit_consumptions c group by 1 $$,
  $$ values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 1) $$,
  'a member of A sees A''s consumption and no other'
);
select is(
  (select count(*)::integer from public.credit_consumptions c where c.organization_id = 'bbbbbbbb-0000-4000-8000-00000000000b'),
  0,
  'a member of A filtering on B counts none of B''s consumptions'
);
select results_eq(
  $$ select t.organization_id, count(*)::integer from public.credit_transactions t group by 1 $$,
  $$ values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 4) $$,
  'a member of A sees A''s four ledger rows (two grants, a consumption, a claw-back) and no other'
);
select is(
  (select count(*)::integer from public.credit_transactions t where t.organization_id = 'bbbbbbbb-0000-4000-8000-00000000000b'),
  0,
  'a member of A filtering on B counts none of B''s ledger rows'
);
select results_eq(
  $$ select c.organization_id, count(*)::integer from public.credit_clawbacks c group by 1 $$,
  $$ values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 1) $$,
  'a member of A sees A''s refund claw-back and no other'
);
select is(
  (select count(*)::integer from public.credit_clawbacks c where c.organization_id = 'bbbbbbbb-0000-4000-8000-00000000000b'),
  0,
  'a member of A filtering on B counts none of B''s claw-backs'
);
select results_eq(
  $$ select h.organization_id, count(*)::integer from public.billing_history h group by 1 $$,
  $$ values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 1) $$,
  'a member of A sees A''s billing history and no other'
);
select is(
  (select count(*)::integer from public.billing_history h where h.organization_id = 'bbbbbbbb-0000-4000-8000-00000000000b'),
  0,
  'a member of A filtering on B counts none of B''s billing history'
);

-- ============================================================================
-- Member of A: writes (none allowed, not even in A)
-- ============================================================================

select throws_ok($$ insert into public.organizations (name) values ('Mine') $$, '42501', null,
  'a member cannot insert an organization');
select throws_ok($$ update public.organizations set name = 'Hijacked' where id = 'aaaaaaaa-0000-4000-8000-00000000000a' $$, '42501', null,
  'a member cannot update their organization');
select throws_ok($$ delete from public.organizations where id = 'aaaaaaaa-0000-4000-8000-00000000000a' $$, '42501', null,
  'a member cannot delete their organization');

select throws_ok(
  $$ insert into public.organization_members (organization_id, user_id, role)
     values ('bbbbbbbb-0000-4000-8000-00000000000b', auth.uid(), 'owner') $$, '42501', null,
  'a member cannot insert a membership');
select throws_ok(
  $$ update public.organization_members set role = 'owner'
      where organization_id = 'aaaaaaaa-0000-4000-8000-00000000000a' and user_id = auth.uid() $$, '42501', null,
  'a member cannot update a membership, not even their own');
select throws_ok($$ delete from public.organization_members where organization_id = 'aaaaaaaa-0000-4000-8000-00000000000a' $$, '42501', null,
  'a member cannot delete memberships');

select throws_ok(
  $$ insert into public.organization_subscriptions (organization_id, billing_interval, status, stripe_subscription_id, stripe_customer_id)
     values ('aaaaaaaa-0000-4000-8000-00000000000a', 'year', 'active', 'sub_forged', 'cus_forged') $$, '42501', null,
  'a member cannot insert a subscription');
select throws_ok($$ update public.organization_subscriptions set status = 'active', current_period_end = now() + interval '10 years' $$, '42501', null,
  'a member cannot update a subscription');
select throws_ok($$ delete from public.organization_subscriptions $$, '42501', null,
  'a member cannot delete a subscription');

select throws_ok(
  $$ insert into public.credit_lots (organization_id, source, granted, remaining)
     values ('aaaaaaaa-0000-4000-8000-00000000000a', 'purchased', 1000000, 1000000) $$, '42501', null,
  'a member cannot insert a credit lot');
select throws_ok($$ update public.credit_lots set remaining = granted $$, '42501', null,
  'a member cannot update a credit lot');
select throws_ok($$ delete from public.credit_lots $$, '42501', null,
  'a member cannot delete a credit lot');

select throws_ok(
  $$ insert into public.credit_consumptions (organization_id, event_key, quantity, credits, purchased_used, subscription_used, result)
     values ('aaaaaaaa-0000-4000-8000-00000000000a', 'api_call_basic', 1, 1, 1, 0, '{}') $$, '42501', null,
  'a member cannot insert a consumption');
select throws_ok($$ update public.credit_consumptions set credits = 1 $$, '42501', null,
  'a member cannot update a consumption');
select throws_ok($$ delete from public.credit_consumptions $$, '42501', null,
  'a member cannot delete a consumption');

select throws_ok(
  $$ insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id)
     select l.organization_id, 'grant', 'purchased', 1000000, 1000000, l.id from public.credit_lots l limit 1 $$, '42501', null,
  'a member cannot insert a ledger row');
select throws_ok($$ update public.credit_transactions set amount = 0 $$, '42501', null,
  'a member cannot update a ledger row');
select throws_ok($$ delete from public.credit_transactions $$, '42501', null,
  'a member cannot delete a ledger row');

select throws_ok(
  $$ insert into public.credit_clawbacks (organization_id, refund_id, requested, clawed_back)
     values ('aaaaaaaa-0000-4000-8000-00000000000a', 're_forged', 1, 0) $$, '42501', null,
  'a member cannot insert a claw-back');
select throws_ok($$ update public.credit_clawbacks set clawed_back = 0 $$, '42501', null,
  'a member cannot update a claw-back');
select throws_ok($$ delete from public.credit_clawbacks $$, '42501', null,
  'a member cannot delete a claw-back');

select throws_ok(
  $$ insert into public.billing_history (organization_id, stripe_reference, kind, status, amount, currency, occurred_at)
     values ('aaaaaaaa-0000-4000-8000-00000000000a', 'in_forged', 'subscription_invoice', 'paid', 0, 'usd', now()) $$, '42501', null,
  'a member cannot insert billing history');
select throws_ok($$ update public.billing_history set status = 'refunded' $$, '42501', null,
  'a member cannot update billing history');
select throws_ok($$ delete from public.billing_history $$, '42501', null,
  'a member cannot delete billing history');

select throws_ok($$ update public.subscription_plans set monthly_unit_amount = 0 $$, '42501', null,
  'a member cannot change plan prices');
select throws_ok($$ update public.credit_events set credit_cost = 1 $$, '42501', null,
  'a member cannot change what an event costs');
select throws_ok(
  $$ insert into public.credit_products (code, name, credits, unit_amount) values ('free_money', 'Free money', 1000000, 0) $$, '42501', null,
  'a member cannot add a credit product');

-- ============================================================================
-- Owner of A: owners write no billing data directly either
-- ============================================================================

select tests.authenticate_as('alice@rls.test');

select throws_ok($$ update public.credit_lots set remaining = granted $$, '42501', null,
  'an owner cannot update a credit lot');
select throws_ok(
  $$ insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id)
     select l.organization_id, 'grant', 'purchased', 1000000, 1000000, l.id from public.credit_lots l limit 1 $$, '42501', null,
  'an owner cannot insert a ledger row');

-- ============================================================================
-- Authenticated users: the catalog
-- ============================================================================

select tests.authenticate_as('bob@rls.test');
select is(
  (select count(*)::integer from public.subscription_plans p where p.code = 'legacy'),
  1,
  'a member of an organization subscribed to a retired plan can still read that plan'
);

select tests.authenticate_as('amy@rls.test');
select is(
  (select count(*)::integer from public.subscription_plans p where p.code = 'legacy'),
  0,
  'a member of another organization cannot read a retired plan'
);
select is_empty($$ select e.event_key from public.credit_events e where not e.is_active $$,
  'a signed-in user reads no inactive credit event');
select is_empty($$ select p.code from public.credit_products p where not p.is_active $$,
  'a signed-in user reads no inactive credit product');

-- ============================================================================
-- Stranger (whatever their user metadata claims)
-- ============================================================================

-- User metadata is editable by the user; claiming A in it must change nothing.
reset role;
update auth.users
   set raw_user_meta_data = jsonb_build_object('organization_id', 'aaaaaaaa-0000-4000-8000-00000000000a', 'role', 'owner',
                                               'organizations', jsonb_build_array('aaaaaaaa-0000-4000-8000-00000000000a'))
 where email = 'sam@rls.test';
select tests.authenticate_as('sam@rls.test');
select set_config('request.jwt.claims',
  (current_setting('request.jwt.claims')::jsonb
    || jsonb_build_object('user_metadata', jsonb_build_object('organization_id', 'aaaaaaaa-0000-4000-8000-00000000000a', 'role', 'owner')))::text,
  true);

select is((select count(*)::integer from public.organizations), 0,
  'a stranger claiming A in their user metadata counts no organization');
select is((select count(*)::integer from public.organization_members), 0,
  'a stranger counts no membership');
select is((select count(*)::integer from public.organization_subscriptions), 0,
  'a stranger counts no subscription');
select is((select count(*)::integer from public.credit_lots), 0,
  'a stranger counts no credit lot');
select is((select count(*)::integer from public.credit_consumptions), 0,
  'a stranger counts no consumption');
select is((select count(*)::integer from public.credit_transactions), 0,
  'a stranger counts no ledger row');
select is((select count(*)::integer from public.credit_clawbacks), 0,
  'a stranger counts no claw-back');
select is((select count(*)::integer from public.billing_history), 0,
  'a stranger counts no billing history');
select is((select count(*)::integer from public.subscription_plans p where p.code = 'legacy'), 0,
  'a stranger cannot read a retired plan');
select throws_ok($$ select public.get_credit_balance('aaaaaaaa-0000-4000-8000-00000000000a') $$, '42501', null,
  'a stranger claiming A in their user metadata cannot read A''s balance');

-- ============================================================================
-- Anon
-- ============================================================================

select tests.clear_authentication();

select throws_ok($$ select count(*) from public.organizations $$, '42501', null, 'anon cannot read organizations');
select throws_ok($$ select count(*) from public.organization_members $$, '42501', null, 'anon cannot read memberships');
select throws_ok($$ select count(*) from public.organization_subscriptions $$, '42501', null, 'anon cannot read subscriptions');
select throws_ok($$ select count(*) from public.credit_lots $$, '42501', null, 'anon cannot read credit lots');
select throws_ok($$ select count(*) from public.credit_consumptions $$, '42501', null, 'anon cannot read consumptions');
select throws_ok($$ select count(*) from public.credit_transactions $$, '42501', null, 'anon cannot read the ledger');
select throws_ok($$ select count(*) from public.credit_clawbacks $$, '42501', null, 'anon cannot read claw-backs');
select throws_ok($$ select count(*) from public.billing_history $$, '42501', null, 'anon cannot read billing history');

select is((select count(*)::text from public.subscription_plans), current_setting('t.active_plans'),
  'anon reads every active plan (the pricing page)');
select is_empty($$ select p.code from public.subscription_plans p where not p.is_active $$,
  'anon reads no inactive plan');
select is((select count(*)::text from public.credit_events), current_setting('t.active_events'),
  'anon reads every active credit event');
select is_empty($$ select e.event_key from public.credit_events e where not e.is_active $$,
  'anon reads no inactive credit event');
select is((select count(*)::text from public.credit_products), current_setting('t.active_products'),
  'anon reads every active credit product');
select is_empty($$ select p.code from public.credit_products p where not p.is_active $$,
  'anon reads no inactive credit product');

-- ============================================================================
-- Service role
-- ============================================================================

select tests.authenticate_as_service_role();

select is((select count(distinct t.organization_id)::integer from public.credit_transactions t), 2,
  'the service role reads every organization''s ledger');
select throws_ok(
  $$ insert into public.credit_lots (organization_id, source, granted, remaining)
     values ('aaaaaaaa-0000-4000-8000-00000000000a', 'purchased', 10, 10) $$, '42501', null,
  'the service role cannot insert a credit lot without its ledger row (only grant_credits can)');
select throws_ok($$ update public.credit_transactions set amount = amount $$, '42501', null,
  'the service role cannot update the ledger');
select lives_ok(
  $$ update public.organization_subscriptions set cancel_at_period_end = cancel_at_period_end $$,
  'the service role can write subscriptions (the webhook does)'
);

-- ============================================================================
-- Nothing changed
-- ============================================================================

reset role;
select is(pg_temp.billing_fingerprint(), current_setting('t.fingerprint'),
  'no rejected write changed any billing or catalog row');

select * from finish();
rollback;
