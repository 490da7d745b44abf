-- Applying Stripe events: customer links, subscription states in order (stale observations
-- ignored, canceled terminal), paid and failed invoices, credit packs and their refunds.
-- Every effect happens once however often it is applied, and marks its inbox event processed.

begin;
select plan(42);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('wes@apply.test');
insert into public.organizations (id, name) values
  ('dddddddd-0000-4000-8000-0000000000d1', 'Webhooked'),
  ('eeeeeeee-0000-4000-8000-0000000000e1', 'Other');
insert into public.organization_members (organization_id, user_id, role) values
  ('dddddddd-0000-4000-8000-0000000000d1', tests.get_user_id('wes@apply.test'), 'owner');
update public.subscription_plans
   set stripe_monthly_price_id = 'price_starter_m', stripe_annual_price_id = 'price_starter_y'
 where code = 'starter';

select tests.authenticate_as_service_role();
select public.record_stripe_event(id, 'test.event', now(), false, '{}')
  from unnest(array['evt_inv1', 'evt_fail1', 'evt_cs1', 'evt_re1']) as id;

-- Shorthand: apply a subscription state for organization D observed at `p_observed_at`.
create function pg_temp.apply_sub(p_event text, p_price text, p_status text, p_observed_at timestamptz,
  p_cancel_at_period_end boolean default false) returns uuid
language sql
as $$
  select public.apply_stripe_subscription(p_event, 'dddddddd-0000-4000-8000-0000000000d1', 'sub_d', 'cus_d',
    p_price, p_status, '2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z', null, null, p_cancel_at_period_end,
    null, null, null, p_observed_at);
$$;

-- ============================================================================
-- Service role: customer link
-- ============================================================================

select public.record_stripe_event('evt_link', 'checkout.session.completed', now(), false, '{}');
select lives_ok($$ select public.link_stripe_customer('evt_link', 'dddddddd-0000-4000-8000-0000000000d1', 'cus_d') $$,
  'checkout completion links the organization to its customer');
select is((select stripe_customer_id from public.organizations where id = 'dddddddd-0000-4000-8000-0000000000d1'), 'cus_d',
  'the customer id is stored on the organization');
select is((select status::text from public.stripe_events where id = 'evt_link'), 'processed', 'and the event is processed');
select lives_ok($$ select public.link_stripe_customer(null, 'dddddddd-0000-4000-8000-0000000000d1', 'cus_d') $$,
  'linking the same customer again is harmless');
select throws_ok($$ select public.link_stripe_customer(null, 'dddddddd-0000-4000-8000-0000000000d1', 'cus_other') $$,
  'PT409', null, 'a second customer for the organization is refused');
select throws_ok($$ select public.link_stripe_customer(null, 'eeeeeeee-0000-4000-8000-0000000000e1', 'cus_d') $$,
  'PT409', null, 'a customer already linked to another organization is refused');

-- ============================================================================
-- Service role: subscription states in order
-- ============================================================================

select public.record_stripe_event('evt_sub1', 'customer.subscription.created', now(), false, '{}');
select isnt(pg_temp.apply_sub('evt_sub1', 'price_starter_m', 'active', '2026-11-01T00:00:10Z'), null,
  'a subscription is applied');
select results_eq(
  $$ select p.code, s.billing_interval::text, s.status::text, s.current_period_end
       from public.organization_subscriptions s join public.subscription_plans p on p.id = s.plan_id
      where s.stripe_subscription_id = 'sub_d' $$,
  $$ values ('starter'::text, 'month'::text, 'active'::text, '2026-12-01T00:00:00Z'::timestamptz) $$,
  'plan and interval come from the price, the period from Stripe');
select is((select status::text from public.stripe_events where id = 'evt_sub1'), 'processed', 'the event is processed');
select throws_ok($$ select pg_temp.apply_sub('evt_never', 'price_starter_m', 'active', now()) $$, 'PT404', null,
  'applying an event that was never recorded in the inbox is refused (and rolled back)');

select pg_temp.apply_sub(null, 'price_starter_m', 'incomplete', '2026-11-01T00:00:05Z');
select is((select status::text from public.organization_subscriptions where stripe_subscription_id = 'sub_d'), 'active',
  'a late, older observation (incomplete) does not overwrite active');

select pg_temp.apply_sub(null, 'price_starter_y', 'active', '2026-11-01T00:00:10Z', true);
select is((select billing_interval::text || ':' || cancel_at_period_end::text from public.organization_subscriptions
            where stripe_subscription_id = 'sub_d'), 'year:true',
  'an observation from the same instant applies (a re-read from Stripe is never older)');

select throws_ok($$ select pg_temp.apply_sub(null, 'price_unknown', 'active', now()) $$, 'PT404', null,
  'a price that belongs to no plan is refused (the webhook parks the event)');
select throws_ok($$ select pg_temp.apply_sub(null, 'price_starter_m', 'weird', now()) $$, '22023', null,
  'an unknown status is refused with 22023');

-- ============================================================================
-- Service role: invoices
-- ============================================================================

select pg_temp.apply_sub(null, 'price_starter_m', 'active', '2026-11-01T00:01:00Z');
select is(
  (public.apply_invoice_paid('evt_inv1', 'dddddddd-0000-4000-8000-0000000000d1', 'in_d1', 'sub_d',
     now() - interval '1 day', now() + interval '29 days', 1900, 'usd', now(),
     '{"invoice_url": "https://invoice.example/in_d1"}') ->> 'granted')::int,
  1000, 'a paid invoice allocates the plan''s monthly credits');
select is(
  (public.apply_invoice_paid(null, 'dddddddd-0000-4000-8000-0000000000d1', 'in_d1', 'sub_d',
     now() - interval '1 day', now() + interval '29 days', 1900, 'usd', now()) ->> 'idempotent_replay')::boolean,
  true, 'applying the same invoice again allocates nothing more');
select is((public.get_credit_balance('dddddddd-0000-4000-8000-0000000000d1') ->> 'subscription')::int, 1000,
  'the balance holds one allowance');
select results_eq(
  $$ select kind::text, status::text, amount, invoice_url from public.billing_history where stripe_reference = 'in_d1' $$,
  $$ values ('subscription_invoice'::text, 'paid'::text, 1900::bigint, 'https://invoice.example/in_d1'::text) $$,
  'the payment is in the history with its invoice link');
select throws_ok(
  $$ select public.apply_invoice_paid(null, 'dddddddd-0000-4000-8000-0000000000d1', 'in_x', 'sub_unknown',
       now(), now() + interval '1 month', 100, 'usd', now()) $$,
  'PT404', null, 'an invoice for a subscription not yet applied is refused');

select is(
  public.apply_invoice_payment_failed('evt_fail1', 'dddddddd-0000-4000-8000-0000000000d1', 'in_d2', 'sub_d', 1900, 'usd',
    '2026-12-01T00:00:00Z'),
  '2026-12-08T00:00:00Z'::timestamptz, 'a failed payment starts a 7-day grace period');
select is(
  public.apply_invoice_payment_failed(null, 'dddddddd-0000-4000-8000-0000000000d1', 'in_d2', 'sub_d', 1900, 'usd',
    '2026-12-04T00:00:00Z'),
  '2026-12-08T00:00:00Z'::timestamptz, 'a retry that fails again does not extend it');
select is((select count(*)::int from public.billing_alerts where kind = 'payment_failed' and dismissed_at is null), 1,
  'members get one payment_failed alert');
select is((select status::text from public.billing_history where stripe_reference = 'in_d2'), 'failed',
  'the failure is in the history');

select public.apply_invoice_paid(null, 'dddddddd-0000-4000-8000-0000000000d1', 'in_d2', 'sub_d',
  now(), now() + interval '1 month', 1900, 'usd', now());
select is((select grace_period_end from public.organization_subscriptions where stripe_subscription_id = 'sub_d'), null,
  'paying the invoice ends the grace period');
select is((select status::text from public.billing_history where stripe_reference = 'in_d2'), 'paid',
  'the history row moves from failed to paid');
select is((select count(*)::int from public.billing_alerts where kind = 'payment_failed' and dismissed_at is null and resolved_at is null), 0,
  'and the payment_failed alert is closed');
select is((select resolved_reason || ' ' || (dismissed_at is null)::text from public.billing_alerts where kind = 'payment_failed'),
  'invoice_paid true', 'resolved because the invoice was paid, not dismissed');

-- ============================================================================
-- Service role: cancellation is terminal
-- ============================================================================

select pg_temp.apply_sub(null, 'price_starter_m', 'canceled', now() + interval '1 minute');
select is((public.get_credit_balance('dddddddd-0000-4000-8000-0000000000d1') ->> 'subscription')::int, 0,
  'a canceled subscription''s remaining credits expire');
select is((select count(*)::int from public.credit_transactions where organization_id = 'dddddddd-0000-4000-8000-0000000000d1'
            and kind = 'expiry'), 2, 'each of its lots gets an expiry row in the ledger');
select pg_temp.apply_sub(null, 'price_starter_m', 'active', now() + interval '2 minutes');
select is((select status::text from public.organization_subscriptions where stripe_subscription_id = 'sub_d'), 'canceled',
  'a canceled subscription stays canceled, even for a newer observation');
select ok((select count(*) from public.billing_alerts where kind = 'subscription_changed'
            and dedupe_key = 'subscription:sub_d:canceled') = 1, 'members are told it was canceled');

-- A payment applied after the cancellation (the events crossed) leaves what in-order delivery
-- would: its allowance granted and expired at once, nothing spendable.
select public.apply_invoice_paid(null, 'dddddddd-0000-4000-8000-0000000000d1', 'in_d_late', 'sub_d',
  now(), now() + interval '1 month', 1900, 'usd', now());
select is((public.get_credit_balance('dddddddd-0000-4000-8000-0000000000d1') ->> 'subscription')::int, 0,
  'a late payment for a canceled subscription leaves no spendable subscription credits');
select results_eq(
  $$ select kind::text, amount from public.credit_transactions
      where organization_id = 'dddddddd-0000-4000-8000-0000000000d1'
        and lot_id = (select id from public.credit_lots where reference = 'in_d_late') order by id $$,
  $$ values ('grant', 1000), ('expiry', -1000) $$,
  'the ledger shows the late allowance granted and expired');

-- ============================================================================
-- Service role: credit packs and refunds
-- ============================================================================

select is(
  (public.apply_credit_purchase('evt_cs1', 'dddddddd-0000-4000-8000-0000000000d1', 'cs_pack1', 'credits_1000', true, 1000, 'usd', now(),
     '{"receipt_url": "https://receipt.example/ch_1"}') ->> 'granted')::int,
  1000, 'a paid pack grants its purchased credits');
select is(
  (public.apply_credit_purchase(null, 'dddddddd-0000-4000-8000-0000000000d1', 'cs_pack1', 'credits_1000', true, 1000, 'usd', now())
     ->> 'idempotent_replay')::boolean,
  true, 'the same checkout session grants once');
select is(
  (public.apply_credit_purchase(null, 'dddddddd-0000-4000-8000-0000000000d1', 'cs_pack2', 'credits_1000', false, 1000, 'usd', now())
     ->> 'granted')::int,
  0, 'a failed async payment grants nothing');
select throws_ok(
  $$ select public.apply_credit_purchase(null, 'dddddddd-0000-4000-8000-0000000000d1', 'cs_pack3', 'credits_nope', true, 1, 'usd', now()) $$,
  'PT404', null, 'an unknown product is refused');

select public.consume_credits('dddddddd-0000-4000-8000-0000000000d1', 'ai_inference', 28);  -- 700 of the pack spent
select is(
  public.apply_credit_refund('evt_re1', 'dddddddd-0000-4000-8000-0000000000d1', 're_1', 'cs_pack1', 500, 1000, 500, 'usd', now())
    - 'balance',
  '{"refund_id": "re_1", "requested": 500, "clawed_back": 300, "shortfall": 200, "idempotent_replay": false}'::jsonb,
  'a half refund claws back half the pack, never below zero, recording what was already spent');
select is((select status::text from public.billing_history where stripe_reference = 'cs_pack1'), 'partially_refunded',
  'the purchase is marked partially refunded');
select is(
  (public.apply_credit_refund(null, 'dddddddd-0000-4000-8000-0000000000d1', 're_1', 'cs_pack1', 500, 1000, 500, 'usd', now())
     ->> 'idempotent_replay')::boolean,
  true, 'the same refund claws back once');

select is((select count(*)::int from public.stripe_events where status = 'processed'), 6,
  'every recorded event that was applied is processed');
reset role;

-- ============================================================================
-- Member: sees the results, cannot apply events
-- ============================================================================

select tests.authenticate_as('wes@apply.test');
select throws_ok(
  $$ select public.apply_credit_purchase(null, 'dddddddd-0000-4000-8000-0000000000d1', 'cs_free', 'credits_1000', true, 0, 'usd', now()) $$,
  '42501', null, 'a member cannot grant themselves a pack by calling the webhook''s function');
reset role;

select * from finish();
rollback;
