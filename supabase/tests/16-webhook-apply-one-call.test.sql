-- One call per webhook effect: a subscription checkout, a refunded charge and a trial-ending
-- reminder each apply their effects and mark their inbox event processed in one transaction
-- (a failure leaves neither behind), once however often they are applied. And the inbox
-- sweep's claim: events left `received` past the threshold, each taken by one sweep at a time.

begin;
select plan(30);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('una@onecall.test');
insert into public.organizations (id, name) values
  ('16161616-0000-4000-8000-000000000001', 'One Call'),
  ('16161616-0000-4000-8000-000000000002', 'Other');
insert into public.organization_members (organization_id, user_id, role) values
  ('16161616-0000-4000-8000-000000000001', tests.get_user_id('una@onecall.test'), 'owner');
update public.subscription_plans
   set stripe_monthly_price_id = 'price_onecall_m', stripe_annual_price_id = 'price_onecall_y'
 where code = 'starter';

select tests.authenticate_as_service_role();
select public.record_stripe_event(id, 'test.event', now(), false, '{}')
  from unnest(array['evt_oc_checkout', 'evt_oc_checkout_nosub', 'evt_oc_checkout_bad', 'evt_oc_refund',
                    'evt_oc_refund_bad', 'evt_oc_trial', 'evt_oc_trial_again']) as id;

create function pg_temp.event_status(p_id text) returns text language sql as $$
  select status::text from public.stripe_events where id = p_id
$$;

-- ============================================================================
-- Service role: apply_checkout_subscription
-- ============================================================================

select lives_ok(
  $$ select public.apply_checkout_subscription('evt_oc_checkout', '16161616-0000-4000-8000-000000000001', 'cus_onecall',
       'sub_onecall', 'cus_onecall', 'price_onecall_m', 'trialing', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z',
       '2026-12-01T00:00:00Z', '2026-12-15T00:00:00Z', false, null, null, null, now()) $$,
  'a subscription checkout applies in one call');
select is((select stripe_customer_id from public.organizations where id = '16161616-0000-4000-8000-000000000001'),
  'cus_onecall', 'the organization is linked to the checkout''s customer');
select is((select status::text from public.organization_subscriptions where stripe_subscription_id = 'sub_onecall'),
  'trialing', 'the subscription is applied as read from Stripe');
select is(pg_temp.event_status('evt_oc_checkout'), 'processed', 'and the event is processed');

select lives_ok(
  $$ select public.apply_checkout_subscription('evt_oc_checkout_nosub', '16161616-0000-4000-8000-000000000001', 'cus_onecall') $$,
  'a checkout without a subscription yet only links the customer');
select is(pg_temp.event_status('evt_oc_checkout_nosub'), 'processed', 'and marks its event processed');

select throws_ok(
  $$ select public.apply_checkout_subscription('evt_oc_checkout_bad', '16161616-0000-4000-8000-000000000002', 'cus_other',
       'sub_other', 'cus_other', 'price_nobody_sells', 'active', now(), now() + interval '1 month',
       null, null, false, null, null, null, now()) $$,
  'PT404', null, 'a subscription on a price no plan has is refused');
select is((select stripe_customer_id from public.organizations where id = '16161616-0000-4000-8000-000000000002'),
  null, 'and the customer link of the same call was rolled back with it');
select is(pg_temp.event_status('evt_oc_checkout_bad'), 'received', 'the event is still received (the webhook parks it)');

-- ============================================================================
-- Service role: apply_charge_refunded
-- ============================================================================

select public.apply_credit_purchase(null, '16161616-0000-4000-8000-000000000001', 'cs_onecall', 'credits_1000', true, 1000, 'usd', now());
select is(
  jsonb_array_length(public.apply_charge_refunded('evt_oc_refund', '16161616-0000-4000-8000-000000000001', 'cs_onecall', 1000, 600,
    '[{"id": "re_oc1", "amount": 400, "currency": "usd", "refunded_at": "2026-12-01T00:00:00Z"},
      {"id": "re_oc2", "amount": 200, "currency": "usd", "refunded_at": "2026-12-02T00:00:00Z"}]')),
  2, 'both refunds of the charge are applied in one call');
select is((select remaining from public.credit_lots where reference = 'cs_onecall'), 400,
  'the refunded share of the pack (600 of 1000) is clawed back');
select is(pg_temp.event_status('evt_oc_refund'), 'processed', 'and the event is processed in the same call');
select is(
  (select count(*)::int from jsonb_array_elements(public.apply_charge_refunded(null, '16161616-0000-4000-8000-000000000001',
     'cs_onecall', 1000, 600, '[{"id": "re_oc1", "amount": 400, "currency": "usd", "refunded_at": "2026-12-01T00:00:00Z"},
      {"id": "re_oc2", "amount": 200, "currency": "usd", "refunded_at": "2026-12-02T00:00:00Z"}]')) as r
    where (r ->> 'idempotent_replay')::boolean),
  2, 'applied again (a redelivery, a sweep), every refund is recognised as done');
select is((select remaining from public.credit_lots where reference = 'cs_onecall'), 400, 'and nothing more is clawed back');

select throws_ok(
  $$ select public.apply_charge_refunded('evt_oc_refund_bad', '16161616-0000-4000-8000-000000000001', 'cs_onecall', 1000, 1000,
       '[{"id": "re_oc3", "amount": 400, "currency": "usd", "refunded_at": "2026-12-03T00:00:00Z"},
         {"id": "re_oc4", "amount": 0, "currency": "usd", "refunded_at": "2026-12-03T00:00:00Z"}]') $$,
  '22023', null, 'a charge with a refund of nothing is refused');
select is((select count(*)::int from public.credit_transactions where kind = 'refund'
             and reference in ('re_oc3', 're_oc4')), 0,
  'and the other refund of the same call was rolled back with it');
select is(pg_temp.event_status('evt_oc_refund_bad'), 'received', 'the event is not marked processed');
select throws_ok(
  $$ select public.apply_charge_refunded(null, '16161616-0000-4000-8000-000000000001', 'cs_onecall', 1000, 600, '{"id": "re_x"}') $$,
  '22023', null, 'refunds must be a list');

-- ============================================================================
-- Service role: apply_trial_will_end
-- ============================================================================

select isnt(public.apply_trial_will_end('evt_oc_trial', '16161616-0000-4000-8000-000000000001', 'sub_onecall', '2026-12-15T00:00:00Z'),
  null, 'the trial-ending reminder raises an alert');
select is(
  (select jsonb_build_object('message', message, 'data', data) from public.billing_alerts
    where organization_id = '16161616-0000-4000-8000-000000000001' and kind = 'trial_ending'),
  '{"message": "The trial ends on 2026-12-15.", "data": {"subscription": "sub_onecall", "trial_end": "2026-12-15T00:00:00.000Z"}}'::jsonb,
  'saying when the trial ends, in UTC');
select is(pg_temp.event_status('evt_oc_trial'), 'processed', 'and the event is processed');
select public.apply_trial_will_end('evt_oc_trial_again', '16161616-0000-4000-8000-000000000001', 'sub_onecall', '2026-12-15T00:00:00Z');
select is((select count(*)::int from public.billing_alerts
            where organization_id = '16161616-0000-4000-8000-000000000001' and kind = 'trial_ending'), 1,
  'a second reminder for the same trial raises no second alert');

-- ============================================================================
-- Service role: the sweep's claim
-- ============================================================================

update public.stripe_events set status = 'processed' where status = 'received';
select public.record_stripe_event('evt_oc_stale', 'invoice.paid', now(), false, '{"id": "evt_oc_stale"}');
select public.record_stripe_event('evt_oc_fresh', 'invoice.paid', now(), false, '{"id": "evt_oc_fresh"}');
update public.stripe_events set received_at = now() - interval '5 minutes' where id = 'evt_oc_stale';

select results_eq(
  $$ select event_id from public.claim_stripe_events_to_sweep(60) $$,
  $$ values ('evt_oc_stale') $$,
  'the sweep takes the event received minutes ago, not the one just received');
select is_empty(
  $$ select event_id from public.claim_stripe_events_to_sweep(60) $$,
  'a second sweep within the threshold does not take it again');
select results_eq(
  $$ select event_id from public.claim_stripe_events_to_sweep(0) order by event_id $$,
  $$ values ('evt_oc_fresh'), ('evt_oc_stale') $$,
  'with no threshold, every received event is due');

select public.record_stripe_event('evt_oc_redelivered', 'invoice.paid', now(), false, '{"id": "evt_oc_redelivered"}');
update public.stripe_events set received_at = now() - interval '5 minutes' where id = 'evt_oc_redelivered';
select public.record_stripe_event('evt_oc_redelivered', 'invoice.paid', now(), false, '{"id": "evt_oc_redelivered"}');
select is_empty(
  $$ select event_id from public.claim_stripe_events_to_sweep(60) where event_id = 'evt_oc_redelivered' $$,
  'an old event Stripe just redelivered is left to that delivery, not swept at the same time');

-- ============================================================================
-- Service role: a transient failure is noted, the event stays received
-- ============================================================================

select public.note_stripe_event_failure('evt_oc_redelivered', 'DatabaseFailure: canceling statement due to lock timeout');
select is((select status::text || ': ' || last_error from public.stripe_events where id = 'evt_oc_redelivered'),
  'received: DatabaseFailure: canceling statement due to lock timeout', 'the event stays received, with why it waits');
select public.note_stripe_event_failure('evt_oc_trial', 'late news');
select is((select last_error from public.stripe_events where id = 'evt_oc_trial'), null,
  'a finished event is not marked as failing');
select throws_ok($$ select public.note_stripe_event_failure('evt_oc_never', 'x') $$, 'PT404', null,
  'an event never received cannot fail');
reset role;

-- ============================================================================
-- Member: cannot apply events or sweep
-- ============================================================================

select tests.authenticate_as('una@onecall.test');
select throws_ok(
  $$ select public.apply_trial_will_end(null, '16161616-0000-4000-8000-000000000001', 'sub_onecall', now()) $$,
  '42501', null, 'a member cannot apply a webhook effect');
reset role;

select * from finish();
rollback;
