-- Notifications: the outbox is written in the same transaction as the change that causes it
-- (and not at all when that change rolls back), emails go to owners and admins only, for
-- warning and critical alerts only, deliveries retry with backoff for more than a day, and
-- nobody but the service role can read or drive any of it.

begin;
select plan(38);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('olga@notify.test');   -- owner
select tests.create_user('adam@notify.test');   -- admin
select tests.create_user('mona@notify.test');   -- member

insert into public.organizations (id, name) values ('dddddddd-0000-4000-8000-0000000000d1', 'Notified Org');
insert into public.organization_members (organization_id, user_id, role) values
  ('dddddddd-0000-4000-8000-0000000000d1', tests.get_user_id('olga@notify.test'), 'owner'),
  ('dddddddd-0000-4000-8000-0000000000d1', tests.get_user_id('adam@notify.test'), 'admin'),
  ('dddddddd-0000-4000-8000-0000000000d1', tests.get_user_id('mona@notify.test'), 'member');

-- Earlier test files leave nothing behind (each rolls back), but the seed may have written
-- notifications; every count below is for this organization only.
create temporary view org_notifications as
  select * from public.notifications where organization_id = 'dddddddd-0000-4000-8000-0000000000d1';
create temporary view org_emails as
  select * from public.notification_emails where organization_id = 'dddddddd-0000-4000-8000-0000000000d1';
grant select on org_notifications, org_emails to service_role;

-- ============================================================================
-- Service role: alerts
-- ============================================================================

select tests.authenticate_as_service_role();

select public.raise_billing_alert('dddddddd-0000-4000-8000-0000000000d1', 'payment_failed', 'critical',
  'Payment failed', 'Your card was declined.', '{"invoice": "in_n1"}', 'payment_failed:in_n1');

select is((select count(*)::int from org_notifications where type = 'alert.raised'), 1,
  'raising an alert writes one alert.raised notification in the same transaction');
select is((select payload ->> 'type' from org_notifications where type = 'alert.raised'), 'alert.raised',
  'the body names its type');
select is((select payload -> 'data' ->> 'organization_id' from org_notifications where type = 'alert.raised'),
  'dddddddd-0000-4000-8000-0000000000d1', 'the body''s data carries the organization id');
select is((select payload -> 'data' ->> 'kind' from org_notifications where type = 'alert.raised'), 'payment_failed',
  'the body''s data carries the alert kind');
select ok((select (payload ->> 'timestamp')::timestamptz is not null from org_notifications where type = 'alert.raised'),
  'the body carries an ISO timestamp');
select is((select array_agg(recipient order by recipient) from org_emails),
  array['adam@notify.test', 'olga@notify.test'],
  'a critical alert writes one email per owner and admin');
select is((select count(*)::int from org_emails where recipient = 'mona@notify.test'), 0,
  'members get no alert email');
select is((select content ->> 'title' from org_emails where recipient = 'olga@notify.test'), 'Payment failed',
  'the email carries the alert''s title');
select is((select content ->> 'organization_name' from org_emails where recipient = 'olga@notify.test'), 'Notified Org',
  'the email names the organization');

select public.raise_billing_alert('dddddddd-0000-4000-8000-0000000000d1', 'subscription_changed', 'info',
  'Plan changed', '', '{}', null);
select is((select count(*)::int from org_notifications where type = 'alert.raised'), 2,
  'an info alert is still notified to the backend');
select is((select count(*)::int from org_emails), 2, 'an info alert sends no email');

select public.raise_billing_alert('dddddddd-0000-4000-8000-0000000000d1', 'low_balance', 'warning',
  'Credits running low', 'Balance 5', '{}', null);
select is((select count(*)::int from org_emails), 4, 'a warning alert emails owners and admins too');

-- ============================================================================
-- Service role: a change that rolls back notifies nobody
-- ============================================================================

savepoint before_rollback;
select public.raise_billing_alert('dddddddd-0000-4000-8000-0000000000d1', 'unusual_usage', 'warning',
  'Unusual usage', '', '{}', 'unusual');
rollback to savepoint before_rollback;
select is((select count(*)::int from org_notifications where payload -> 'data' ->> 'kind' = 'unusual_usage'), 0,
  'no notification survives a rolled-back alert');
select is((select count(*)::int from org_emails where content ->> 'kind' = 'unusual_usage'), 0,
  'no email survives a rolled-back alert');

-- ============================================================================
-- Service role: payments, once per payment and outcome
-- ============================================================================

select public.record_billing_history('dddddddd-0000-4000-8000-0000000000d1', 'in_notify1', 'subscription_invoice',
  'open', 1000, 'usd', now());
select is((select count(*)::int from org_notifications where type like 'payment.%'), 0, 'an open invoice notifies nothing');

select public.record_billing_history('dddddddd-0000-4000-8000-0000000000d1', 'in_notify1', 'subscription_invoice',
  'failed', 1000, 'usd', now());
select public.record_billing_history('dddddddd-0000-4000-8000-0000000000d1', 'in_notify1', 'subscription_invoice',
  'failed', 1000, 'usd', now());
select is((select count(*)::int from org_notifications where type = 'payment.failed'), 1,
  'a failed payment notifies once, however often the webhook is redelivered');

select public.record_billing_history('dddddddd-0000-4000-8000-0000000000d1', 'in_notify1', 'subscription_invoice',
  'paid', 1000, 'usd', now());
select public.record_billing_history('dddddddd-0000-4000-8000-0000000000d1', 'in_notify1', 'subscription_invoice',
  'paid', 1000, 'usd', now());
select is((select count(*)::int from org_notifications where type = 'payment.succeeded'), 1,
  'a payment that succeeds after failing notifies payment.succeeded once');
select is((select (payload -> 'data' ->> 'amount')::int from org_notifications where type = 'payment.succeeded'), 1000,
  'the payment notification carries the amount');

select public.record_billing_history('dddddddd-0000-4000-8000-0000000000d1', 'cs_notify1', 'credit_purchase',
  'paid', 500, 'usd', now());
select is((select count(*)::int from org_notifications where type = 'payment.succeeded'), 2,
  'a paid credit purchase is a payment too');
select public.record_billing_history('dddddddd-0000-4000-8000-0000000000d1', 're_notify1', 'refund',
  'refunded', 500, 'usd', now());
select is((select count(*)::int from org_notifications where type like 'payment.%'), 3, 'a refund is not a payment');

-- ============================================================================
-- Subscriptions: every status change, nothing when the status stays
-- ============================================================================

reset role;
insert into public.organization_subscriptions (id, organization_id, billing_interval, status, stripe_subscription_id, stripe_customer_id)
values ('eeeeeeee-0000-4000-8000-0000000000e1', 'dddddddd-0000-4000-8000-0000000000d1', 'month', 'active', 'sub_notify1', 'cus_notify1');
update public.organization_subscriptions set cancel_at_period_end = true where id = 'eeeeeeee-0000-4000-8000-0000000000e1';
update public.organization_subscriptions set status = 'active' where id = 'eeeeeeee-0000-4000-8000-0000000000e1';
select is((select count(*)::int from org_notifications where type = 'subscription.updated'), 1,
  'a new subscription notifies once and an update that keeps its status notifies nothing');
update public.organization_subscriptions set status = 'past_due' where id = 'eeeeeeee-0000-4000-8000-0000000000e1';
select is((select payload -> 'data' ->> 'previous_status' from org_notifications
            where type = 'subscription.updated' and payload -> 'data' ->> 'status' = 'past_due'), 'active',
  'a status change notifies subscription.updated with the status it left');

-- ============================================================================
-- Delivery: claiming, backoff, giving up
-- ============================================================================

select is(private.notification_retry_delay(1), interval '5 seconds', 'the first retry comes after 5 seconds');
select is(private.notification_retry_delay(11), null, 'there is no retry after the eleventh attempt');
select ok((select sum(private.notification_retry_delay(n)) from generate_series(1, 10) n) > interval '24 hours',
  'retries span more than a day');

-- Only this test's rows are due at this far-future clock once everything else is delivered.
update public.notifications set status = 'delivered' where id <> (select id from org_notifications where type = 'payment.failed');
select tests.authenticate_as_service_role();

create temporary table claimed on commit drop as
  select * from public.claim_notifications(10, '2100-01-01T00:00:00Z');
select is((select count(*)::int from claimed), 1, 'a due notification is claimed');
select is((select count(*)::int from public.claim_notifications(10, '2100-01-01T00:00:01Z')), 0,
  'a claimed notification is not handed to a second deliverer while its attempt is under way');

select is(public.record_notification_attempt('webhook', (select notification_id from claimed), 1, false, 500, 'HTTP 500',
  '2100-01-01T00:00:02Z'), 'pending'::public.notification_status, 'a failed attempt leaves the notification pending');
select is((select count(*)::int from public.claim_notifications(10, '2100-01-01T00:00:06Z')), 0,
  'it is not retried before its backoff has passed');
select is((select attempt from public.claim_notifications(10, '2100-01-01T00:00:07Z')), 2,
  'it is retried once the backoff has passed, as attempt 2');
select is(public.record_notification_attempt('webhook', (select notification_id from claimed), 2, true, 200, null,
  '2100-01-01T00:00:08Z'), 'delivered'::public.notification_status, 'a 2xx marks it delivered');
select is((select array_agg(response_status order by attempt) from public.notification_attempts
            where notification_id = (select notification_id from claimed)), array[500, 200],
  'every attempt is recorded with its outcome');

reset role;
update public.notifications set attempts = 10, status = 'pending', next_attempt_at = '2000-01-01'
 where id = (select notification_id from claimed);
select tests.authenticate_as_service_role();
select is((select attempt from public.claim_notifications(10, '2100-01-02T00:00:00Z')), 11, 'the last attempt is claimed');
select is(public.record_notification_attempt('webhook', (select notification_id from claimed), 11, false, null, 'refused',
  '2100-01-02T00:00:01Z'), 'failed'::public.notification_status, 'a failed last attempt marks the notification failed');

-- ============================================================================
-- Member and anon: no access
-- ============================================================================

select tests.authenticate_as('olga@notify.test');
select throws_ok($$ select count(*) from public.notifications $$, '42501', null,
  'an owner cannot read the notification outbox');
select throws_ok($$ select count(*) from public.notification_emails $$, '42501', null,
  'an owner cannot read the email outbox (other members'' addresses)');
select throws_ok($$ select * from public.claim_notifications(10) $$, '42501', null,
  'an owner cannot claim notifications');

select tests.clear_authentication();
select throws_ok($$ select count(*) from public.notification_attempts $$, '42501', null,
  'anon cannot read delivery attempts');

select * from finish();
rollback;
