-- Plan changes: an upgrade charged at once (a Stripe invoice of proration lines only) adds the
-- prorated difference of the allowances for the rest of the period, exactly as the prices were
-- prorated, once per invoice, as a lot of the current period that ends with it and leaves the
-- period's own allowance alone. Nothing is granted for a change that is not a net charge, for
-- prices that are not ours, or for time outside the period. The renewal after it ends both.

begin;
select plan(24);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('pat@plans.test');

insert into public.organizations (id, name, stripe_customer_id) values
  ('27000000-0000-4000-8000-00000000000a', 'Upgrader', 'cus_plans_a');
insert into public.organization_members (organization_id, user_id, role) values
  ('27000000-0000-4000-8000-00000000000a', tests.get_user_id('pat@plans.test'), 'owner');
update public.subscription_plans set stripe_monthly_price_id = 'price_pc_starter_m', stripe_annual_price_id = 'price_pc_starter_y'
 where code = 'starter';
update public.subscription_plans set stripe_monthly_price_id = 'price_pc_pro_m', stripe_annual_price_id = 'price_pc_pro_y'
 where code = 'professional';
update public.subscription_plans set stripe_monthly_price_id = 'price_pc_ent_m', stripe_annual_price_id = 'price_pc_ent_y'
 where code = 'enterprise';

-- A 30-day period in the future (so nothing here expires while the test runs), upgraded from
-- Starter to Professional with two thirds (20 days) of it left.
create function pg_temp.line(p_price text, p_amount int, p_start text, p_end text) returns jsonb
language sql as $$ select jsonb_build_object('price', p_price, 'amount', p_amount, 'start', p_start, 'end', p_end) $$;
create function pg_temp.upgrade_lines() returns jsonb
language sql as $$
  select jsonb_build_array(
    pg_temp.line('price_pc_starter_m', -1267, '2099-01-11T00:00:00Z', '2099-01-31T00:00:00Z'),
    pg_temp.line('price_pc_pro_m', 3267, '2099-01-11T00:00:00Z', '2099-01-31T00:00:00Z'))
$$;

-- ============================================================================
-- The credit rule
-- ============================================================================

select tests.authenticate_as_service_role();
select is(public.proration_allowance_credits(pg_temp.upgrade_lines(), '2099-01-01T00:00:00Z', '2099-01-31T00:00:00Z'),
  2666, 'two thirds of the allowance difference (5,000 - 1,000), rounded down');
select is(public.proration_allowance_credits(jsonb_build_array(
    pg_temp.line('price_pc_pro_m', -3267, '2099-01-11T00:00:00Z', '2099-01-31T00:00:00Z'),
    pg_temp.line('price_pc_starter_m', 1267, '2099-01-11T00:00:00Z', '2099-01-31T00:00:00Z')),
  '2099-01-01T00:00:00Z', '2099-01-31T00:00:00Z'),
  0, 'a change that is not a net charge grants nothing (never negative)');
select is(public.proration_allowance_credits(jsonb_build_array(
    pg_temp.line('price_pc_pro_m', 3267, '2098-12-01T00:00:00Z', '2099-03-31T00:00:00Z')),
  '2099-01-01T00:00:00Z', '2099-01-31T00:00:00Z'),
  5000, 'a line reaching outside the period counts only inside it: at most one allowance');
select is(public.proration_allowance_credits(jsonb_build_array(
    pg_temp.line('price_not_ours', 99999, '2099-01-11T00:00:00Z', '2099-01-31T00:00:00Z')),
  '2099-01-01T00:00:00Z', '2099-01-31T00:00:00Z'),
  0, 'a price that is not ours counts for nothing');
select is(public.proration_allowance_credits(jsonb_build_array(
    pg_temp.line('price_pc_starter_y', -19000, '2099-01-01T00:00:00Z', '2100-01-01T00:00:00Z'),
    pg_temp.line('price_pc_pro_y', 49000, '2099-01-01T00:00:00Z', '2100-01-01T00:00:00Z')),
  '2099-01-01T00:00:00Z', '2100-01-01T00:00:00Z'),
  48000, 'annual prices count the annual allowances (60,000 - 12,000)');
select throws_ok($$ select public.proration_allowance_credits('{"price": "x"}', '2099-01-01', '2099-01-31') $$,
  '22023', null, 'lines that are not an array are refused');
select throws_ok($$ select public.proration_allowance_credits('[{"price": "price_pc_pro_m", "amount": "lots", "start": "2099-01-01", "end": "2099-01-31"}]', '2099-01-01', '2099-01-31') $$,
  '22023', null, 'a malformed line is refused');
select throws_ok($$ select public.proration_allowance_credits('[]', '2099-01-31', '2099-01-01') $$,
  '22023', null, 'a period that ends before it starts is refused');
select tests.authenticate_as('pat@plans.test');
select throws_ok($$ select public.proration_allowance_credits('[]', '2099-01-01', '2099-01-31') $$,
  '42501', null, 'members cannot call it');
reset role;

-- ============================================================================
-- Applying a paid upgrade
-- ============================================================================

select tests.authenticate_as_service_role();
select public.apply_stripe_subscription(null, '27000000-0000-4000-8000-00000000000a', 'sub_plans_a', 'cus_plans_a',
  'price_pc_starter_m', 'active', '2099-01-01T00:00:00Z', '2099-01-31T00:00:00Z', null, null, false,
  null, null, null, '2099-01-01T00:00:00Z');
select public.apply_invoice_paid(null, '27000000-0000-4000-8000-00000000000a', 'in_plans_period', 'sub_plans_a',
  '2099-01-01T00:00:00Z', '2099-01-31T00:00:00Z', 1900, 'usd', '2099-01-01T00:00:00Z', '{}');
create temporary table period_lot as
  select id, granted, expires_at from public.credit_lots where reference = 'in_plans_period';

-- The subscription as Stripe has it after the upgrade, then the upgrade's invoice, in one call.
select set_config('t.first', public.apply_proration_invoice_paid_with_subscription(null, '27000000-0000-4000-8000-00000000000a',
  'in_plans_upgrade', 'sub_plans_a', pg_temp.upgrade_lines(), 2000, 'usd', '2099-01-11T00:00:00Z', '{}',
  'cus_plans_a', 'price_pc_pro_m', 'active', '2099-01-01T00:00:00Z', '2099-01-31T00:00:00Z', null, null, false,
  null, null, null, '2099-01-11T00:00:00Z')::text, true);
reset role;

select is((current_setting('t.first')::jsonb ->> 'granted')::int, 2666, 'the upgrade grants the prorated allowance difference');
select is((select row(source::text, granted, expires_at, period_start, period_end)::text
             from public.credit_lots where reference = 'in_plans_upgrade'),
  row('subscription', 2666, '2099-01-31T00:00:00Z'::timestamptz, '2099-01-01T00:00:00Z'::timestamptz,
      '2099-01-31T00:00:00Z'::timestamptz)::text,
  'as one subscription lot keyed on the invoice, in the current period, ending with it');
select is((select row(granted, expires_at)::text from public.credit_lots where reference = 'in_plans_period'),
  (select row(granted, expires_at)::text from period_lot),
  'the period''s own allowance keeps its credits and its expiry');
select is((select count(*)::int from public.credit_lots where organization_id = '27000000-0000-4000-8000-00000000000a'),
  2, 'no fresh allowance for a change that pays for no new period');
select is((select plan_id from public.organization_subscriptions where stripe_subscription_id = 'sub_plans_a'),
  (select id from public.subscription_plans where code = 'professional'), 'the subscription was applied first');
select is((select row(kind::text, status::text, amount)::text from public.billing_history
            where stripe_reference = 'in_plans_upgrade'),
  row('subscription_invoice', 'paid', 2000)::text, 'the payment is in the history');

select tests.authenticate_as_service_role();
select set_config('t.again', public.apply_proration_invoice_paid(null, '27000000-0000-4000-8000-00000000000a',
  'in_plans_upgrade', 'sub_plans_a', pg_temp.upgrade_lines(), 2000, 'usd', '2099-01-11T00:00:00Z', '{}')::text, true);
reset role;
select is((current_setting('t.again')::jsonb ->> 'idempotent_replay')::boolean, true, 'a replay says so');
select is((select count(*)::int from public.credit_transactions where reference = 'in_plans_upgrade' and kind = 'grant'),
  1, 'and grants once');

-- A second upgrade in the same period (Professional to Enterprise, 10 days left) pays and grants again.
select tests.authenticate_as_service_role();
select public.apply_proration_invoice_paid(null, '27000000-0000-4000-8000-00000000000a', 'in_plans_upgrade2', 'sub_plans_a',
  jsonb_build_array(
    pg_temp.line('price_pc_pro_m', -1633, '2099-01-21T00:00:00Z', '2099-01-31T00:00:00Z'),
    pg_temp.line('price_pc_ent_m', 6633, '2099-01-21T00:00:00Z', '2099-01-31T00:00:00Z')),
  5000, 'usd', '2099-01-21T00:00:00Z', '{}');
-- A net credit (a price lowered with prorations) grants nothing and takes nothing.
select set_config('t.credit', public.apply_proration_invoice_paid(null, '27000000-0000-4000-8000-00000000000a', 'in_plans_credit', 'sub_plans_a',
  jsonb_build_array(
    pg_temp.line('price_pc_ent_m', -6633, '2099-01-21T00:00:00Z', '2099-01-31T00:00:00Z'),
    pg_temp.line('price_pc_pro_m', 1633, '2099-01-21T00:00:00Z', '2099-01-31T00:00:00Z')),
  0, 'usd', '2099-01-21T00:00:00Z', '{}')::text, true);
reset role;
select is((select granted from public.credit_lots where reference = 'in_plans_upgrade2'), 6666,
  'a second upgrade grants its own share (a third of 25,000 - 5,000)');
select is((current_setting('t.credit')::jsonb ->> 'granted')::int, 0, 'a net credit grants nothing');
select is((select count(*)::int from public.credit_lots where reference = 'in_plans_credit'), 0, 'and makes no lot');

-- The renewal: the period's allowance and both top-ups end where the next period starts.
select tests.authenticate_as_service_role();
select public.apply_invoice_paid(null, '27000000-0000-4000-8000-00000000000a', 'in_plans_renewal', 'sub_plans_a',
  '2099-01-31T00:00:00Z', '2099-03-03T00:00:00Z', 19900, 'usd', '2099-01-31T00:00:00Z', '{}');
reset role;
select is((select count(*)::int from public.credit_lots
            where organization_id = '27000000-0000-4000-8000-00000000000a' and expires_at <= '2099-01-31T00:00:00Z'),
  3, 'at the renewal the period''s allowance and its top-ups end together');

-- Refusals.
select tests.authenticate_as('pat@plans.test');
select throws_ok($$ select public.apply_proration_invoice_paid(null, '27000000-0000-4000-8000-00000000000a', 'in_x', 'sub_plans_a', '[]', 0, 'usd', now(), '{}') $$,
  '42501', null, 'members cannot apply invoices');
reset role;
select tests.authenticate_as_service_role();
select throws_ok($$ select public.apply_proration_invoice_paid(null, '27000000-0000-4000-8000-00000000000a', 'in_x', 'sub_unknown', '[]', 0, 'usd', now(), '{}') $$,
  'PT404', null, 'an unknown subscription is PT404');
select throws_ok($$ select public.apply_proration_invoice_paid(null, '27000000-0000-4000-8000-00000000000a', 'not-an-invoice', 'sub_plans_a', '[]', 0, 'usd', now(), '{}') $$,
  '22023', null, 'an id that is not an invoice id is refused');
reset role;

select * from finish();
rollback;
