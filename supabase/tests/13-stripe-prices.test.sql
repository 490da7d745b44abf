-- The catalog's Stripe prices are created on first use by the billing API and remembered
-- once: the first price stored wins, so concurrent first checkouts converge.

begin;
select plan(7);

-- ============================================================================
-- Service role
-- ============================================================================

select tests.authenticate_as_service_role();
select is(public.remember_stripe_price('plan', 'starter', 'month', 'price_first', 'prod_starter'), 'price_first',
  'the first price for a plan interval is stored');
select is(public.remember_stripe_price('plan', 'starter', 'month', 'price_second', 'prod_starter'), 'price_first',
  'a later price for the same interval does not replace it, and the stored one is returned');
select is(public.remember_stripe_price('plan', 'starter', 'year', 'price_annual', null), 'price_annual',
  'the annual price is stored separately');
select is(public.remember_stripe_price('credit_product', 'credits_1000', null, 'price_pack', 'prod_pack'), 'price_pack',
  'a credit pack''s price is stored');
select throws_ok($$ select public.remember_stripe_price('plan', 'nope', 'month', 'price_x', null) $$, 'PT404', null,
  'an unknown plan is refused');
select throws_ok($$ select public.remember_stripe_price('plan', 'starter', 'week', 'price_x', null) $$, '22023', null,
  'an interval other than month or year is refused');
reset role;

-- ============================================================================
-- Member
-- ============================================================================

select tests.create_user('pat@prices.test');
select tests.authenticate_as('pat@prices.test');
select throws_ok($$ select public.remember_stripe_price('plan', 'starter', 'month', 'price_evil', null) $$, '42501', null,
  'a signed-in user cannot set catalog prices');
reset role;

select * from finish();
rollback;
