-- One call per effect, for the effects that bring their subscription up to date first: a paid
-- invoice, a failed payment and a trial-ending reminder each apply the subscription as re-read
-- from Stripe, their own effect and the event's `processed` mark in one transaction. Both land
-- together (the invoice finds the subscription the same call applied), or, on an error,
-- neither does and the event stays received.

begin;
select plan(25);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('fay@fold.test');
insert into public.organizations (id, name) values
  ('19191919-0000-4000-8000-000000000001', 'Fold Paid'),
  ('19191919-0000-4000-8000-000000000002', 'Fold Refused'),
  ('19191919-0000-4000-8000-000000000003', 'Fold Trial'),
  ('19191919-0000-4000-8000-000000000004', 'Fold Trial Refused');
insert into public.organization_members (organization_id, user_id, role) values
  ('19191919-0000-4000-8000-000000000001', tests.get_user_id('fay@fold.test'), 'owner');
update public.subscription_plans
   set stripe_monthly_price_id = 'price_fold_m', stripe_annual_price_id = 'price_fold_y'
 where code = 'starter';

select tests.authenticate_as_service_role();
select public.record_stripe_event(id, 'test.event', now(), false, '{}')
  from unnest(array['evt_fold_paid', 'evt_fold_paid_again', 'evt_fold_paid_bad', 'evt_fold_failed',
                    'evt_fold_failed_bad', 'evt_fold_trial', 'evt_fold_trial_bad']) as id;

create function pg_temp.event_status(p_id text) returns text language sql as $$
  select status::text from public.stripe_events where id = p_id
$$;
create function pg_temp.subscription_status(p_id text) returns text language sql as $$
  select status::text from public.organization_subscriptions where stripe_subscription_id = p_id
$$;

-- ============================================================================
-- Service role: apply_invoice_paid_with_subscription
-- ============================================================================

-- A subscription never applied before: on its own, apply_invoice_paid refuses it (PT404).
select lives_ok(
  $$ select public.apply_invoice_paid_with_subscription('evt_fold_paid', '19191919-0000-4000-8000-000000000001',
       'in_fold_1', 'sub_fold_1', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z', 1900, 'usd', '2026-12-01T00:00:00Z',
       '{"invoice_url": "https://invoice.test/in_fold_1"}',
       'cus_fold_1', 'price_fold_m', 'active', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z',
       null, null, false, null, null, null, now()) $$,
  'a paid invoice and its subscription apply in one call');
select is(pg_temp.subscription_status('sub_fold_1'), 'active', 'the subscription is applied as read from Stripe');
select is((select count(*)::int from public.credit_lots where reference = 'in_fold_1'), 1,
  'the invoice found it: the period''s credits are granted');
select is((select status::text from public.billing_history where stripe_reference = 'in_fold_1'), 'paid',
  'and the payment is in the history');
select is(pg_temp.event_status('evt_fold_paid'), 'processed', 'and the event is processed');

select lives_ok(
  $$ select public.apply_invoice_paid_with_subscription('evt_fold_paid_again', '19191919-0000-4000-8000-000000000001',
       'in_fold_1', 'sub_fold_1', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z', 1900, 'usd', '2026-12-01T00:00:00Z',
       '{}', 'cus_fold_1', 'price_fold_m', 'active', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z',
       null, null, false, null, null, null, now()) $$,
  'the same invoice applied again (invoice.payment_succeeded after invoice.paid)');
select is((select count(*)::int from public.credit_lots where reference = 'in_fold_1'), 1, 'grants nothing more');
select is(pg_temp.event_status('evt_fold_paid_again'), 'processed', 'and finishes its event');

select throws_ok(
  $$ select public.apply_invoice_paid_with_subscription('evt_fold_paid_bad', '19191919-0000-4000-8000-000000000002',
       'not-an-invoice', 'sub_fold_2', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z', 1900, 'usd', '2026-12-01T00:00:00Z',
       '{}', 'cus_fold_2', 'price_fold_m', 'active', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z',
       null, null, false, null, null, null, now()) $$,
  '22023', null, 'an invoice we refuse is refused');
select is(pg_temp.subscription_status('sub_fold_2'), null,
  'and the subscription state of the same call was rolled back with it');
select is(pg_temp.event_status('evt_fold_paid_bad'), 'received', 'the event is still received (the webhook parks it)');

-- ============================================================================
-- Service role: apply_invoice_payment_failed_with_subscription
-- ============================================================================

select isnt(
  public.apply_invoice_payment_failed_with_subscription('evt_fold_failed', '19191919-0000-4000-8000-000000000001',
    'in_fold_2', 'sub_fold_1', 1900, 'usd', '2027-01-01T00:00:00Z', '7 days', '{}',
    'cus_fold_1', 'price_fold_m', 'past_due', '2027-01-01T00:00:00Z', '2027-02-01T00:00:00Z',
    null, null, false, null, null, null, now() + interval '1 second'),
  null, 'a failed payment and its subscription apply in one call');
select is(pg_temp.subscription_status('sub_fold_1'), 'past_due', 'the subscription is past due as read');
select is((select grace_period_end from public.organization_subscriptions where stripe_subscription_id = 'sub_fold_1'),
  '2027-01-08T00:00:00Z'::timestamptz, 'and its grace period runs from the failure');
select is(pg_temp.event_status('evt_fold_failed'), 'processed', 'and the event is processed');

select throws_ok(
  $$ select public.apply_invoice_payment_failed_with_subscription('evt_fold_failed_bad', '19191919-0000-4000-8000-000000000001',
       'in_fold_3', 'sub_fold_1', 1900, 'usd', '2027-02-01T00:00:00Z', '-1 day', '{}',
       'cus_fold_1', 'price_fold_m', 'unpaid', '2027-02-01T00:00:00Z', '2027-03-01T00:00:00Z',
       null, null, false, null, null, null, now() + interval '2 seconds') $$,
  '22023', null, 'a failure with a negative grace period is refused');
select is(pg_temp.subscription_status('sub_fold_1'), 'past_due',
  'and the newer subscription state of the same call was rolled back with it');
select is(pg_temp.event_status('evt_fold_failed_bad'), 'received', 'the event is still received');

-- ============================================================================
-- Service role: apply_trial_will_end_with_subscription
-- ============================================================================

select isnt(
  public.apply_trial_will_end_with_subscription('evt_fold_trial', '19191919-0000-4000-8000-000000000003',
    'sub_fold_3', 'cus_fold_3', 'price_fold_m', 'trialing', '2026-12-01T00:00:00Z', '2026-12-15T00:00:00Z',
    '2026-12-01T00:00:00Z', '2026-12-15T00:00:00Z', false, null, null, null, now()),
  null, 'a trial-ending reminder and its subscription apply in one call');
select is(pg_temp.subscription_status('sub_fold_3'), 'trialing', 'the subscription is applied as read');
select is(
  (select data from public.billing_alerts
    where organization_id = '19191919-0000-4000-8000-000000000003' and kind = 'trial_ending'),
  '{"subscription": "sub_fold_3", "trial_end": "2026-12-15T00:00:00.000Z"}'::jsonb,
  'the alert names the trial end as read');
select is(pg_temp.event_status('evt_fold_trial'), 'processed', 'and the event is processed');

select throws_ok(
  $$ select public.apply_trial_will_end_with_subscription('evt_fold_trial_bad', '19191919-0000-4000-8000-000000000004',
       'sub_fold_4', 'cus_fold_4', 'price_fold_m', 'trialing', '2026-12-01T00:00:00Z', '2026-12-15T00:00:00Z',
       null, null, false, null, null, null, now()) $$,
  '22023', null, 'a reminder with no trial end is refused');
select is(pg_temp.subscription_status('sub_fold_4'), null, 'and the subscription of the same call was rolled back with it');
reset role;

-- ============================================================================
-- Member: cannot apply events
-- ============================================================================

select tests.authenticate_as('fay@fold.test');
select throws_ok(
  $$ select public.apply_trial_will_end_with_subscription(null, '19191919-0000-4000-8000-000000000001',
       'sub_fold_1', 'cus_fold_1', 'price_fold_m', 'trialing', now(), now(), now(), now(), false, null, null, null, now()) $$,
  '42501', null, 'a member cannot apply a webhook effect');
reset role;

select * from finish();
rollback;
