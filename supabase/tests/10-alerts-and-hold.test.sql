-- Alerts (low balance once per crossing, raised and dismissed by the right people) and the
-- subscription-credit hold of a past-due subscription beyond its grace period.

begin;
select plan(27);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('owen@alerts.test');   -- owner of A
select tests.create_user('mia@alerts.test');    -- member of A
select tests.create_user('sid@alerts.test');    -- member of B only

insert into public.organizations (id, name, low_balance_threshold) values
  ('aaaaaaaa-0000-4000-8000-0000000000a1', 'A', 100),
  ('bbbbbbbb-0000-4000-8000-0000000000b1', 'B', 0),
  ('cccccccc-0000-4000-8000-0000000000c1', 'Past due', 0);
insert into public.organization_members (organization_id, user_id, role) values
  ('aaaaaaaa-0000-4000-8000-0000000000a1', tests.get_user_id('owen@alerts.test'), 'owner'),
  ('aaaaaaaa-0000-4000-8000-0000000000a1', tests.get_user_id('mia@alerts.test'), 'member'),
  ('bbbbbbbb-0000-4000-8000-0000000000b1', tests.get_user_id('sid@alerts.test'), 'owner'),
  ('cccccccc-0000-4000-8000-0000000000c1', tests.get_user_id('owen@alerts.test'), 'owner');

select public.grant_credits('aaaaaaaa-0000-4000-8000-0000000000a1', 150, 'purchased', null, 'cs_a');
select public.grant_credits('bbbbbbbb-0000-4000-8000-0000000000b1', 50, 'purchased', null, 'cs_b');

-- ============================================================================
-- Low balance: one alert per crossing
-- ============================================================================

select public.consume_credits('aaaaaaaa-0000-4000-8000-0000000000a1', 'storage_gb_month', 4);  -- 110: still above
select is((select count(*)::int from public.billing_alerts where organization_id = 'aaaaaaaa-0000-4000-8000-0000000000a1'), 0,
  'no alert while the balance stays at or above the threshold');

select public.consume_credits('aaaaaaaa-0000-4000-8000-0000000000a1', 'storage_gb_month', 2);  -- 90: crosses
select is((select count(*)::int from public.billing_alerts where organization_id = 'aaaaaaaa-0000-4000-8000-0000000000a1' and kind = 'low_balance'), 1,
  'crossing below the threshold raises one low_balance alert');
select is((select (data ->> 'balance')::int from public.billing_alerts where organization_id = 'aaaaaaaa-0000-4000-8000-0000000000a1'), 90,
  'the alert carries the balance it fell to');

select public.consume_credits('aaaaaaaa-0000-4000-8000-0000000000a1', 'api_call_basic', 5);  -- 85: still below
select is((select count(*)::int from public.billing_alerts where organization_id = 'aaaaaaaa-0000-4000-8000-0000000000a1'), 1,
  'further consumption below the threshold raises no second alert');

select public.grant_credits('aaaaaaaa-0000-4000-8000-0000000000a1', 100, 'purchased', null, 'cs_a2');  -- 185: resolves it
select public.consume_credits('aaaaaaaa-0000-4000-8000-0000000000a1', 'storage_gb_month', 9);        -- 95: crosses again
select is((select count(*)::int from public.billing_alerts where organization_id = 'aaaaaaaa-0000-4000-8000-0000000000a1'
            and dismissed_at is null and resolved_at is null), 1,
  'a second crossing after the balance came back leaves one open alert (the first one is resolved)');

select public.consume_credits('bbbbbbbb-0000-4000-8000-0000000000b1', 'ai_inference', 2);  -- B: 0, threshold 0
select is((select count(*)::int from public.billing_alerts where organization_id = 'bbbbbbbb-0000-4000-8000-0000000000b1'), 0,
  'a threshold of 0 disables the low-balance alert');

-- ============================================================================
-- Member: reads and dismisses
-- ============================================================================

select tests.authenticate_as('mia@alerts.test');
select is((select count(*)::int from public.billing_alerts where resolved_at is null), 1, 'a member sees their organization''s alert');
select lives_ok(
  format('select public.dismiss_billing_alert(%L)', (select id from public.billing_alerts where resolved_at is null)),
  'a member may dismiss it');
select is((select dismissed_by from public.billing_alerts where resolved_at is null), tests.get_user_id('mia@alerts.test'),
  'the dismissal records who dismissed it');
select throws_ok(
  $$ update public.billing_alerts set dismissed_at = null $$, '42501', null,
  'a member cannot update alerts directly');
select throws_ok(
  $$ select public.raise_billing_alert('aaaaaaaa-0000-4000-8000-0000000000a1', 'payment_failed', 'critical', 'Fake') $$,
  '42501', null, 'a member cannot raise alerts');
reset role;

select public.consume_credits('aaaaaaaa-0000-4000-8000-0000000000a1', 'api_call_basic', 1);  -- still below: no new crossing
select is((select count(*)::int from public.billing_alerts where organization_id = 'aaaaaaaa-0000-4000-8000-0000000000a1' and dismissed_at is null and resolved_at is null), 0,
  'staying below the threshold after a dismissal raises nothing new');
select public.grant_credits('aaaaaaaa-0000-4000-8000-0000000000a1', 100, 'purchased', null, 'cs_a3');
select public.consume_credits('aaaaaaaa-0000-4000-8000-0000000000a1', 'storage_gb_month', 10);
select is((select count(*)::int from public.billing_alerts where organization_id = 'aaaaaaaa-0000-4000-8000-0000000000a1' and dismissed_at is null and resolved_at is null), 1,
  'the next crossing after a dismissal raises a new alert');

-- ============================================================================
-- Stranger and anon
-- ============================================================================

select tests.authenticate_as('sid@alerts.test');
select is((select count(*)::int from public.billing_alerts where organization_id = 'aaaaaaaa-0000-4000-8000-0000000000a1'), 0,
  'a member of another organization sees none of A''s alerts');
select throws_ok(
  format('select public.dismiss_billing_alert(%L)',
    (select id from public.billing_alerts where organization_id = 'aaaaaaaa-0000-4000-8000-0000000000a1' and dismissed_at is null and resolved_at is null)),
  '42501', null, 'a member of another organization cannot dismiss A''s alert');
select throws_ok(
  $$ select public.dismiss_billing_alert('00000000-0000-4000-8000-000000000000') $$,
  '42501', null, 'an unknown alert id is refused like a foreign one');
reset role;

select tests.clear_authentication();
select throws_ok($$ select count(*) from public.billing_alerts $$, '42501', null, 'anon cannot read alerts');
select throws_ok($$ select public.dismiss_billing_alert('00000000-0000-4000-8000-000000000000') $$, '42501', null,
  'anon cannot dismiss alerts');
reset role;

-- ============================================================================
-- Service role: raising alerts
-- ============================================================================

select tests.authenticate_as_service_role();
select isnt(
  public.raise_billing_alert('aaaaaaaa-0000-4000-8000-0000000000a1', 'payment_failed', 'critical', 'Payment failed',
    'Invoice in_1 could not be charged.', '{"invoice": "in_1"}', 'payment_failed:in_1'),
  null, 'the service role raises an alert');
select is(
  public.raise_billing_alert('aaaaaaaa-0000-4000-8000-0000000000a1', 'payment_failed', 'critical', 'Payment failed',
    'Invoice in_1 could not be charged.', '{"invoice": "in_1"}', 'payment_failed:in_1'),
  (select id from public.billing_alerts where dedupe_key = 'payment_failed:in_1'),
  'the same dedupe key while open returns the existing alert');
select throws_ok(
  $$ select public.raise_billing_alert('aaaaaaaa-0000-4000-8000-0000000000a1', 'bogus', 'info', 'x') $$,
  '22023', null, 'an unknown alert kind is refused with 22023');
reset role;

-- ============================================================================
-- Hold: past due beyond the grace period
-- ============================================================================

select public.grant_credits('cccccccc-0000-4000-8000-0000000000c1', 30, 'purchased', null, 'cs_c');
select public.grant_credits('cccccccc-0000-4000-8000-0000000000c1', 100, 'subscription', now() + interval '20 days', 'in_c');
insert into public.organization_subscriptions
  (organization_id, billing_interval, status, stripe_subscription_id, stripe_customer_id, grace_period_end)
values ('cccccccc-0000-4000-8000-0000000000c1', 'month', 'past_due', 'sub_c', 'cus_c', now() + interval '3 days');

select is((public.get_credit_balance('cccccccc-0000-4000-8000-0000000000c1') ->> 'subscription')::int, 100,
  'during the grace period subscription credits are still counted');
select is((public.consume_credits('cccccccc-0000-4000-8000-0000000000c1', 'storage_gb_month', 4) ->> 'subscription_used')::int, 10,
  'during the grace period subscription credits are still spent');

update public.organization_subscriptions set grace_period_end = now() where stripe_subscription_id = 'sub_c';
select is(public.get_credit_balance('cccccccc-0000-4000-8000-0000000000c1') - 'next_expiry_at' - 'expiring_amount' - 'reserved',
  '{"total": 0, "purchased": 0, "subscription": 0}'::jsonb,
  'after the grace period subscription credits are held: the balance shows only purchased credit');
select throws_ok(
  $$ select public.consume_credits('cccccccc-0000-4000-8000-0000000000c1', 'api_call_basic', 1) $$,
  'PT402', null, 'after the grace period held subscription credits cannot be spent');
select is((select remaining from public.credit_lots where reference = 'in_c'), 90,
  'the held credits are kept, not expired');

update public.organization_subscriptions set status = 'active', grace_period_end = null where stripe_subscription_id = 'sub_c';
select is((public.consume_credits('cccccccc-0000-4000-8000-0000000000c1', 'api_call_basic', 1) ->> 'subscription_used')::int, 1,
  'once the invoice is paid the held credits are spendable again');

select * from finish();
rollback;
