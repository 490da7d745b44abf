-- Repairing Stripe ids the database remembers but Stripe no longer has: a new price or
-- customer replaces the old one only if the old one is still what is stored (compare-and-set,
-- so concurrent repairs agree); a replaced plan price still maps subscriptions bought at it;
-- a customer with a live subscription is not replaced.

begin;
select plan(17);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('rey@repair.test');
insert into public.organizations (id, name, stripe_customer_id) values
  ('aaaaaaaa-0000-4000-8000-0000000000a1', 'Repaired', 'cus_gone'),
  ('aaaaaaaa-0000-4000-8000-0000000000a2', 'Subscribed', 'cus_gone_too'),
  ('aaaaaaaa-0000-4000-8000-0000000000a3', 'Other', 'cus_taken');
insert into public.organization_members (organization_id, user_id, role) values
  ('aaaaaaaa-0000-4000-8000-0000000000a1', tests.get_user_id('rey@repair.test'), 'owner');
update public.subscription_plans
   set stripe_monthly_price_id = 'price_old_m', stripe_annual_price_id = 'price_old_y'
 where code = 'starter';
update public.credit_products set stripe_price_id = 'price_old_pack' where code = 'credits_1000';

-- ============================================================================
-- Service role: prices
-- ============================================================================

select tests.authenticate_as_service_role();
select is(public.replace_stripe_price('plan', 'starter', 'month', 'price_old_m', 'price_new_m', 'prod_new'), 'price_new_m',
  'a plan price replaces the one it was asked to replace');
select is(public.replace_stripe_price('plan', 'starter', 'month', 'price_old_m', 'price_newer_m', 'prod_new'), 'price_new_m',
  'a second repair of the same old price keeps the first one''s price and returns it');
select is((select stripe_annual_price_id from public.subscription_plans where code = 'starter'), 'price_old_y',
  'the other interval is untouched');
select is(public.replace_stripe_price('credit_product', 'credits_1000', null, 'price_old_pack', 'price_new_pack', null), 'price_new_pack',
  'a credit pack''s price is replaced the same way');
select throws_ok($$ select public.replace_stripe_price('plan', 'nope', 'month', 'price_a', 'price_b', null) $$, 'PT404', null,
  'an unknown plan is refused');
select throws_ok($$ select public.replace_stripe_price('plan', 'starter', 'month', 'price_new_m', 'not-a-price', null) $$, '22023', null,
  'a new id that is not a Stripe price id is refused');

select lives_ok($$ select public.apply_stripe_subscription(null, 'aaaaaaaa-0000-4000-8000-0000000000a2', 'sub_on_old_price',
    'cus_gone_too', 'price_old_m', 'active', '2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z', null, null, false,
    null, null, null, now()) $$,
  'a subscription still on the replaced price is applied');
select is((select p.code from public.organization_subscriptions s join public.subscription_plans p on p.id = s.plan_id
            where s.stripe_subscription_id = 'sub_on_old_price'), 'starter',
  'and mapped to the plan the old price belonged to');
select is((select billing_interval::text from public.organization_subscriptions where stripe_subscription_id = 'sub_on_old_price'), 'month',
  'at the old price''s interval');
select throws_ok($$ select public.apply_stripe_subscription(null, 'aaaaaaaa-0000-4000-8000-0000000000a2', 'sub_other',
    'cus_gone_too', 'price_never_ours', 'active', null, null, null, null, false, null, null, null, now()) $$, 'PT404', null,
  'a price that was never ours is still refused');

-- ============================================================================
-- Service role: customers
-- ============================================================================

select is(public.replace_stripe_customer('aaaaaaaa-0000-4000-8000-0000000000a1', 'cus_gone', 'cus_new'), 'cus_new',
  'a customer Stripe lost is replaced for an organization without a live subscription');
select is(public.replace_stripe_customer('aaaaaaaa-0000-4000-8000-0000000000a1', 'cus_gone', 'cus_newer'), 'cus_new',
  'a second repair of the same old customer keeps the first one''s customer');
select throws_ok($$ select public.replace_stripe_customer('aaaaaaaa-0000-4000-8000-0000000000a2', 'cus_gone_too', 'cus_second') $$,
  'PT409', null, 'a customer with a live subscription is not replaced');
select is((select stripe_customer_id from public.organizations where id = 'aaaaaaaa-0000-4000-8000-0000000000a2'), 'cus_gone_too',
  'and stays as it was');
select throws_ok($$ select public.replace_stripe_customer('aaaaaaaa-0000-4000-8000-0000000000a1', 'cus_new', 'cus_taken') $$,
  'PT409', null, 'a customer linked to another organization is refused');
reset role;

-- ============================================================================
-- Owner
-- ============================================================================

select tests.authenticate_as('rey@repair.test');
select throws_ok($$ select public.replace_stripe_customer('aaaaaaaa-0000-4000-8000-0000000000a1', 'cus_new', 'cus_mine') $$,
  '42501', null, 'an owner cannot replace the organization''s customer');
select throws_ok($$ select public.replace_stripe_price('plan', 'starter', 'month', 'price_new_m', 'price_evil', null) $$,
  '42501', null, 'nor a catalog price');
reset role;

select * from finish();
rollback;
