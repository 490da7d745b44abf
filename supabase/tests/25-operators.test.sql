-- Operators: who may use the operator console (operators and the service role, nobody else),
-- operator_overview against figures computed by hand on a known fixture, the console's read
-- functions, manual adjustments with their reason, notification retry and operator alerts.
-- Figures that depend on the whole database (counts now, MRR, outstanding credit) are
-- compared as the difference the fixture makes, so data other than this file's does not matter.

begin;
select plan(176);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('olivia@operators.test');   -- the operator
select tests.create_user('owen@operators.test');     -- owner of organization A
select tests.create_user('mia@operators.test');      -- member of organization A
select tests.create_user('sam@operators.test');      -- belongs to nothing

-- Sweep first, so the expiries counted below are this file's.
select public.expire_credits();

-- Two currencies nobody else uses, so their MRR is this file's alone.
insert into public.subscription_plans (id, code, name, currency, monthly_unit_amount, annual_unit_amount, monthly_credits, annual_credits)
values ('00000000-0000-4000-8000-00000000c0f1', 'op_chf', 'Operators CHF', 'chf', 1000, 10000, 100, 1200),
       ('00000000-0000-4000-8000-00000000c0f2', 'op_sek', 'Operators SEK', 'sek', 2500, 24000, 250, 3000);

insert into public.organizations (id, name, stripe_customer_id) values
  ('00000000-0000-4000-8000-0000000000a1', 'Acme Operators', 'cus_opA'),
  ('00000000-0000-4000-8000-0000000000b1', 'Beta Operators', 'cus_opB'),
  ('00000000-0000-4000-8000-0000000000c1', 'Gamma Operators', 'cus_opC'),
  ('00000000-0000-4000-8000-0000000000d1', 'Delta Operators', 'cus_opD'),
  ('00000000-0000-4000-8000-0000000000e1', 'Epsilon Operators', 'cus_opE'),
  ('00000000-0000-4000-8000-0000000000f1', 'Phi Operators', 'cus_opF');
insert into public.organization_members (organization_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000000a1', tests.get_user_id('owen@operators.test'), 'owner'),
  ('00000000-0000-4000-8000-0000000000a1', tests.get_user_id('mia@operators.test'), 'member');

-- The fixture's subscriptions (created in January 2001, the period asked about, except F):
--   A active monthly CHF 10.00          -> MRR chf 1000
--   B active annual CHF 100.00          -> MRR chf 833.33 (annual / 12)
--   C past_due monthly SEK 25.00        -> MRR sek 2500
--   D canceled annual CHF, ended in the period  -> no MRR, one canceled in the period
--   E trialing monthly SEK              -> no MRR
--   F active annual SEK 240.00, created before the period -> MRR sek 2000, not new
-- So MRR chf round(1833.33) = 1833, sek 4500; new in the period 5; canceled in the period 1.
create temporary table overview_before on commit drop as
  select public.operator_overview('2001-01-01', '2001-02-01') as jan,
         public.operator_overview(now() - interval '1 hour', now() + interval '1 hour') as today;

insert into public.organization_subscriptions (organization_id, plan_id, billing_interval, status, stripe_subscription_id,
  stripe_customer_id, current_period_start, current_period_end, ended_at, created_at) values
  ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-00000000c0f1', 'month', 'active', 'sub_opA', 'cus_opA',
   now(), now() + interval '1 month', null, '2001-01-05'),
  ('00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-00000000c0f1', 'year', 'active', 'sub_opB', 'cus_opB',
   now(), now() + interval '1 year', null, '2001-01-06'),
  ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-00000000c0f2', 'month', 'past_due', 'sub_opC', 'cus_opC',
   now(), now() + interval '1 month', null, '2001-01-07'),
  ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-00000000c0f1', 'year', 'canceled', 'sub_opD', 'cus_opD',
   '2001-01-01', '2001-12-31', '2001-01-20', '2001-01-08'),
  ('00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-00000000c0f2', 'month', 'trialing', 'sub_opE', 'cus_opE',
   now(), now() + interval '14 days', null, '2001-01-09'),
  ('00000000-0000-4000-8000-0000000000f1', '00000000-0000-4000-8000-00000000c0f2', 'year', 'active', 'sub_opF', 'cus_opF',
   now(), now() + interval '1 year', null, '2000-06-01');

-- Payments in January 2001: three paid (one later refunded in part), one failed; an open
-- invoice and a refund do not count. Success rate 3 / 4 = 0.75.
insert into public.billing_history (organization_id, stripe_reference, kind, status, amount, currency, occurred_at) values
  ('00000000-0000-4000-8000-0000000000a1', 'in_opA1', 'subscription_invoice', 'paid', 1000, 'chf', '2001-01-05'),
  ('00000000-0000-4000-8000-0000000000b1', 'in_opB1', 'subscription_invoice', 'paid', 10000, 'chf', '2001-01-06'),
  ('00000000-0000-4000-8000-0000000000a1', 'cs_opA1', 'credit_purchase', 'partially_refunded', 1000, 'chf', '2001-01-10'),
  ('00000000-0000-4000-8000-0000000000c1', 'in_opC1', 'subscription_invoice', 'failed', 2500, 'sek', '2001-01-07'),
  ('00000000-0000-4000-8000-0000000000c1', 'in_opC2', 'subscription_invoice', 'open', 2500, 'sek', '2001-01-08'),
  ('00000000-0000-4000-8000-0000000000a1', 're_opA1', 'refund', 'refunded', 500, 'chf', '2001-01-11'),
  ('00000000-0000-4000-8000-0000000000a1', 'in_opA0', 'subscription_invoice', 'paid', 1000, 'chf', '2000-12-05');

-- Credit movements today: A is granted 500 purchased credits and consumes 100; B had 300
-- subscription credits that expired a minute ago (granted 300, expired 300 once swept).
select tests.add_lot('00000000-0000-4000-8000-0000000000b1', 'subscription', 300, now() - interval '1 minute');

select tests.authenticate_as_service_role();
select public.grant_credits('00000000-0000-4000-8000-0000000000a1', 500, 'purchased', null, 'op-grant-a');
select public.consume_credits('00000000-0000-4000-8000-0000000000a1', 'api_call_premium', 20);
select public.expire_credits();
select public.add_billing_operator(tests.get_user_id('olivia@operators.test'));
reset role;

-- A parked webhook event and a failed notification, for the operations views.
insert into public.stripe_events (id, type, stripe_created_at, payload, status, last_error, organization_id)
values ('evt_opParked', 'invoice.paid', now(), '{"id": "evt_opParked"}', 'parked', 'PT404: subscription sub_x has not been applied',
        '00000000-0000-4000-8000-0000000000a1');
insert into public.notifications (id, organization_id, type, event_key, payload, status, attempts, last_error)
values ('00000000-0000-4000-8000-00000000f001', '00000000-0000-4000-8000-0000000000a1', 'payment.succeeded',
        'payment.succeeded:op-test', '{"type": "payment.succeeded"}', 'failed', 10, 'HTTP 500'),
       ('00000000-0000-4000-8000-00000000f002', '00000000-0000-4000-8000-0000000000a1', 'payment.succeeded',
        'payment.succeeded:op-test-2', '{"type": "payment.succeeded"}', 'delivered', 1, null);
select public.raise_operator_alert('reconciliation_drift', 'warning', 'Drift from Stripe', '2 differences', '{"differences": 2}', 'drift:test');

-- The statements every operator function is called with, for the persona sections.
create temporary table operator_calls (name text, statement text) on commit drop;
insert into operator_calls values
  ('operator_overview', $$ select public.operator_overview(now() - interval '1 day', now()) $$),
  ('operator_consumption', $$ select * from public.operator_consumption(now() - interval '1 day', now()) $$),
  ('operator_mrr_trend', $$ select * from public.operator_mrr_trend(now() - interval '1 day', now()) $$),
  ('operator_top_consumers', $$ select * from public.operator_top_consumers(now() - interval '1 day', now()) $$),
  ('operator_organizations', $$ select * from public.operator_organizations() $$),
  ('operator_organization', $$ select public.operator_organization('00000000-0000-4000-8000-0000000000a1') $$),
  ('adjust_credits', $$ select public.adjust_credits('00000000-0000-4000-8000-0000000000a1', 5, 'purchased', 'goodwill') $$),
  ('operator_stripe_events', $$ select * from public.operator_stripe_events() $$),
  ('operator_job_runs', $$ select public.operator_job_runs() $$),
  ('operator_notifications', $$ select * from public.operator_notifications() $$),
  ('operator_retry_notification', $$ select public.operator_retry_notification('webhook', '00000000-0000-4000-8000-00000000f001') $$),
  ('operator_export_ledger', $$ select * from public.operator_export_ledger(null, now() - interval '1 day', now()) $$),
  ('operator_export_history', $$ select * from public.operator_export_history(null, '2001-01-01', '2001-02-01') $$),
  ('operator_alerts', $$ select * from public.operator_alerts() $$),
  ('dismiss_operator_alert', $$ select public.dismiss_operator_alert((select id from public.billing_operator_alerts where dedupe_key = 'drift:test')) $$),
  ('add_billing_operator', $$ select public.add_billing_operator(tests.get_user_id('sam@operators.test')) $$),
  ('raise_operator_alert', $$ select public.raise_operator_alert('reconciliation_drift', 'warning', 'x') $$),
  ('reconciliation_records', $$ select public.reconciliation_records(array['sub_opA'], array['in_opA1'], array['cus_opA']) $$);
grant select on operator_calls to anon, authenticated, service_role;

-- ============================================================================
-- Service role: the overview equals the hand-computed figures
-- ============================================================================

create temporary table overview_after on commit drop as
  select public.operator_overview('2001-01-01', '2001-02-01') as jan,
         public.operator_overview(now() - interval '1 hour', now() + interval '1 hour') as today;
grant select on overview_before, overview_after to service_role;

select is((select jsonb_path_query_array(a.jan -> 'mrr', '$[*] ? (@.currency == "chf" || @.currency == "sek")') from overview_after a),
  '[{"currency": "chf", "amount": 1833}, {"currency": "sek", "amount": 4500}]'::jsonb,
  'MRR per currency counts active and past-due subscriptions at their monthly equivalent (annual / 12), not trialing or canceled ones');
select is((select (a.jan #>> '{subscriptions,active}')::int - (b.jan #>> '{subscriptions,active}')::int
             from overview_after a, overview_before b), 3, 'three more active subscriptions (A, B, F)');
select is((select (a.jan #>> '{subscriptions,trialing}')::int - (b.jan #>> '{subscriptions,trialing}')::int
             from overview_after a, overview_before b), 1, 'one more trialing subscription (E)');
select is((select (a.jan #>> '{subscriptions,past_due}')::int - (b.jan #>> '{subscriptions,past_due}')::int
             from overview_after a, overview_before b), 1, 'one more past-due subscription (C)');
select is((select (a.jan #>> '{subscriptions,unpaid}')::int - (b.jan #>> '{subscriptions,unpaid}')::int
             from overview_after a, overview_before b), 0, 'no unpaid subscription was added');
select is((select (a.jan #>> '{subscriptions,canceled_in_period}')::int - (b.jan #>> '{subscriptions,canceled_in_period}')::int
             from overview_after a, overview_before b), 1, 'the churned subscription (D, ended 20 January) is canceled in the period');
select is((select (a.jan #>> '{subscriptions,new_in_period}')::int - (b.jan #>> '{subscriptions,new_in_period}')::int
             from overview_after a, overview_before b), 5, 'five subscriptions started in January; F, from June 2000, is not new');
select is((select a.jan -> 'payment_success_rate' from overview_after a), '0.7500'::jsonb,
  'payment success rate: 3 paid (a partial refund still counts as paid) of 4 settled; open invoices, refunds and December do not count');
select is((select (a.today #>> '{credits,granted}')::int - (b.today #>> '{credits,granted}')::int
             from overview_after a, overview_before b), 800, 'credits granted today: 500 purchased + 300 subscription');
select is((select (a.today #>> '{credits,consumed}')::int - (b.today #>> '{credits,consumed}')::int
             from overview_after a, overview_before b), 100, 'credits consumed today: 20 premium calls at 5');
select is((select (a.today #>> '{credits,expired}')::int - (b.today #>> '{credits,expired}')::int
             from overview_after a, overview_before b), 300, 'credits expired today (breakage): the lapsed 300');
select is((select (a.today #>> '{credits,outstanding}')::int - (b.today #>> '{credits,outstanding}')::int
             from overview_after a, overview_before b), 400, 'outstanding credits grew by what is still spendable: 500 - 100');
select is((select array_agg(k order by k) from overview_after a, jsonb_object_keys(a.jan) k),
  array['credits', 'mrr', 'payment_success_rate', 'subscriptions', 'trials'],
  'the overview has the contract''s keys (and trials)');
select is((select (a.jan -> 'credits' -> 'granted')::int from overview_after a), 0,
  'no credits were granted in January 2001: the period bounds the credit figures');
select throws_ok($$ select public.operator_overview(now(), now() - interval '1 day') $$, '22023', null,
  'a period that ends before it starts is 22023');

-- The trend, by hand: A (CHF 10.00 monthly) from 5 January, B (CHF 100.00 a year) from the 6th,
-- D (CHF 100.00 a year) from the 8th until it ended on the 20th; C (SEK 25.00) from the 7th and
-- F (SEK 240.00 a year) all along; E is still trialing.
select results_eq(
  $$ select day, currency, amount::int from public.operator_mrr_trend('2001-01-03', '2001-01-26')
      where currency in ('chf', 'sek') and day in ('2001-01-03', '2001-01-10', '2001-01-25') order by day, currency $$,
  $$ values ('2001-01-03'::date, 'chf', 0), ('2001-01-03', 'sek', 2000),
            ('2001-01-10', 'chf', 2667), ('2001-01-10', 'sek', 4500),
            ('2001-01-25', 'chf', 1833), ('2001-01-25', 'sek', 4500) $$,
  'the MRR trend per currency: each subscription from its start (or trial end) until it ended, at its monthly equivalent');
select is((select count(distinct day)::int from public.operator_mrr_trend('2001-01-03', '2001-01-26')), 23,
  'one point per UTC day of the period');
select throws_ok($$ select * from public.operator_mrr_trend('2001-01-01', '2003-01-01') $$, '22023', null,
  'a trend over more than 400 days is 22023');

-- ============================================================================
-- Operator: every read
-- ============================================================================

select tests.authenticate_as('olivia@operators.test');

select is(public.is_billing_operator(), true, 'an operator is a billing operator');
select is((select public.operator_overview('2001-01-01', '2001-02-01') -> 'payment_success_rate'), '0.7500'::jsonb,
  'an operator reads the overview');
select results_eq(
  $$ select event_key, events::int, credits::int from public.operator_consumption(now() - interval '1 hour', now() + interval '1 hour')
      where event_key = 'api_call_premium' $$,
  $$ values ('api_call_premium', 1, 100) $$,
  'an operator reads consumption by day and event');
select is((select organization_id from public.operator_top_consumers(now() - interval '1 hour', now() + interval '1 hour', 100)
            where organization_id = '00000000-0000-4000-8000-0000000000a1'),
  '00000000-0000-4000-8000-0000000000a1'::uuid, 'an operator reads the top consumers');
select throws_ok($$ select * from public.operator_top_consumers(now() - interval '1 hour', now(), 0) $$, '22023', null,
  'a top-consumers limit below 1 is 22023');

select results_eq(
  $$ select name, plan_code, billing_interval, status, balance::int, consumed_this_month::int, last_payment_status, total_count::int
       from public.operator_organizations('acme operators') $$,
  $$ values ('Acme Operators', 'op_chf', 'month', 'active', 400, 100, 'partially_refunded', 1) $$,
  'the organization list finds by name (any case) with plan, status, balance, this month''s consumption and the last payment');
select is((select name from public.operator_organizations('cus_opC')), 'Gamma Operators',
  'the organization list finds by Stripe customer id');
select is((select name from public.operator_organizations('00000000-0000-4000-8000-0000000000d1')), 'Delta Operators',
  'the organization list finds by organization id');
select is((select array_agg(name) from public.operator_organizations('operators', 'balance', true, 2, 0)),
  array['Acme Operators', 'Beta Operators'], 'sorted by balance, highest first, a page of two');
select is((select array_agg(name) from public.operator_organizations('operators', 'name', false, 2, 2)),
  array['Delta Operators', 'Epsilon Operators'], 'sorted by name, the second page');
select is((select total_count::int from public.operator_organizations('operators', 'name', false, 2, 2) limit 1), 6,
  'every row carries the number of matches, for the pager');
select is((select count(*)::int from public.operator_organizations('100%_')), 0, 'LIKE wildcards in a search match literally');
select throws_ok($$ select * from public.operator_organizations(null, 'password') $$, '22023', null, 'an unknown sort key is 22023');
select throws_ok($$ select * from public.operator_organizations(null, 'name', false, 0) $$, '22023', null, 'a page size of 0 is 22023');

select is((select public.operator_organization('00000000-0000-4000-8000-0000000000a1') #>> '{organization,name}'), 'Acme Operators',
  'an operator reads one organization');
select is((select jsonb_array_length(public.operator_organization('00000000-0000-4000-8000-0000000000a1') -> 'ledger')), 2,
  'its ledger: the grant and the consumption');
select is((select public.operator_organization('00000000-0000-4000-8000-0000000000a1') #>> '{balance,total}'), '400',
  'its balance');
select is((select jsonb_array_length(public.operator_organization('00000000-0000-4000-8000-0000000000a1') -> 'history')), 4,
  'its billing history');
select is((select jsonb_array_length(public.operator_organization('00000000-0000-4000-8000-0000000000a1') -> 'members')), 2,
  'its members');
select is((select public.operator_organization('00000000-0000-4000-8000-0000000000a1') #>> '{subscriptions,0,plan_code}'), 'op_chf',
  'its subscription with the plan');
select ok((select public.operator_organization('00000000-0000-4000-8000-0000000000a1') ? 'lots'
             and public.operator_organization('00000000-0000-4000-8000-0000000000a1') ? 'alerts'
             and public.operator_organization('00000000-0000-4000-8000-0000000000a1') ? 'notifications'),
  'its lots, alerts and notifications');
select throws_ok($$ select public.operator_organization('00000000-0000-4000-8000-000000000999') $$, 'PT404', null,
  'an unknown organization is PT404');

select results_eq(
  $$ select id, status, last_error from public.operator_stripe_events('parked', 500) where id = 'evt_opParked' $$,
  $$ values ('evt_opParked', 'parked', 'PT404: subscription sub_x has not been applied') $$,
  'an operator reads parked webhook events with their error');
select throws_ok($$ select * from public.operator_stripe_events('lost') $$, '22023', null, 'an unknown inbox status is 22023');
select ok((select jsonb_path_exists(public.operator_job_runs(), '$.jobs[*] ? (@.name == "reconcile_stripe")')),
  'an operator reads the scheduled jobs, the daily reconciliation among them');
select results_eq(
  $$ select channel, status, attempts, last_error from public.operator_notifications('failed', 500)
      where id = '00000000-0000-4000-8000-00000000f001' $$,
  $$ values ('webhook', 'failed', 10, 'HTTP 500') $$,
  'an operator reads failed notification deliveries');
select throws_ok($$ select * from public.operator_notifications('lost') $$, '22023', null, 'an unknown delivery status is 22023');

select lives_ok($$ select public.operator_retry_notification('webhook', '00000000-0000-4000-8000-00000000f001') $$,
  'an operator retries a failed notification');
select results_eq(
  $$ select status, attempts, next_attempt_at <= now() from public.operator_notifications(null, 500) where id = '00000000-0000-4000-8000-00000000f001' $$,
  $$ values ('pending', 0, true) $$,
  'the retried notification is pending again, due now, with its retries starting over');
select throws_ok($$ select public.operator_retry_notification('webhook', '00000000-0000-4000-8000-00000000f002') $$, 'PT409', null,
  'a delivered notification is not retried (PT409)');
select throws_ok($$ select public.operator_retry_notification('webhook', '00000000-0000-4000-8000-00000000f999') $$, 'PT404', null,
  'an unknown notification is PT404');
select throws_ok($$ select public.operator_retry_notification('pigeon', '00000000-0000-4000-8000-00000000f001') $$, '22023', null,
  'an unknown channel is 22023');

select is((select count(*)::int from public.operator_export_ledger('00000000-0000-4000-8000-0000000000a1', now() - interval '1 hour', now() + interval '1 hour')), 2,
  'the ledger export of one organization for a period');
select is((select count(*)::int from public.operator_export_ledger(null, now() - interval '1 hour', now() + interval '1 hour')
            where organization_name like '% Operators'), 4,
  'the ledger export of every organization: A''s grant and consumption, B''s grant and expiry');
select is((select array_agg(stripe_reference order by occurred_at) from public.operator_export_history('00000000-0000-4000-8000-0000000000a1', '2001-01-01', '2001-02-01')),
  array['in_opA1', 'cs_opA1', 're_opA1'], 'the billing history export of one organization for a period, oldest first');
select is((select count(*)::int from public.operator_export_history(null, '2001-01-01', '2001-02-01')), 6,
  'the billing history export of every organization for the period');
select throws_ok($$ select * from public.operator_export_ledger(null, now(), now()) $$, '22023', null,
  'an empty export period is 22023');

select is((select title from public.operator_alerts() where dedupe_key = 'drift:test'), 'Drift from Stripe',
  'an operator reads operator alerts');
select lives_ok($$ select public.dismiss_operator_alert((select id from public.operator_alerts() where dedupe_key = 'drift:test')) $$,
  'an operator dismisses an operator alert');
select is((select count(*)::int from public.operator_alerts() where dedupe_key = 'drift:test'), 0, 'a dismissed alert leaves the open list');
select is((select dismissed_by from public.operator_alerts(true) where dedupe_key = 'drift:test'),
  tests.get_user_id('olivia@operators.test'), 'the alert records who dismissed it');

-- ============================================================================
-- Operator: manual adjustments
-- ============================================================================

select is((public.adjust_credits('00000000-0000-4000-8000-0000000000c1', 50, 'purchased', '  Goodwill for the outage  ') #>> '{balance,total}'), '50',
  'a positive adjustment grants credits');
select results_eq(
  $$ select kind, source, amount, balance_after, description, actor_id, actor_email
       from public.operator_export_ledger('00000000-0000-4000-8000-0000000000c1', now() - interval '1 hour', now() + interval '1 hour') $$,
  $$ values ('adjustment', 'purchased', 50, 50, 'Goodwill for the outage', tests.get_user_id('olivia@operators.test'), 'olivia@operators.test') $$,
  'the ledger row is an adjustment recording the reason and the operator');
select is((public.adjust_credits('00000000-0000-4000-8000-0000000000c1', -20, 'purchased', 'Double grant') #>> '{balance,total}'), '30',
  'a negative adjustment debits credits');
select throws_ok($$ select public.adjust_credits('00000000-0000-4000-8000-0000000000c1', -31, 'purchased', 'too much') $$,
  'PT402', null, 'a debit below zero is PT402');
select is((select sum(amount)::int from public.operator_export_ledger('00000000-0000-4000-8000-0000000000c1', now() - interval '1 hour', now() + interval '1 hour')), 30,
  'and changes nothing');
select throws_ok($$ select public.adjust_credits('00000000-0000-4000-8000-0000000000c1', -5, 'subscription', 'no such credits') $$,
  'PT402', null, 'a debit takes only the named source');
select throws_ok($$ select public.adjust_credits('00000000-0000-4000-8000-0000000000c1', 5, 'purchased', '   ') $$,
  '22023', null, 'a blank reason is 22023');
select throws_ok($$ select public.adjust_credits('00000000-0000-4000-8000-0000000000c1', 5, 'purchased', null) $$,
  '22023', null, 'a missing reason is 22023');
select throws_ok($$ select public.adjust_credits('00000000-0000-4000-8000-0000000000c1', 0, 'purchased', 'nothing') $$,
  '22023', null, 'a zero amount is 22023');
select throws_ok($$ select public.adjust_credits('00000000-0000-4000-8000-0000000000c1', 5, 'gift', 'unknown source') $$,
  '22023', null, 'an unknown source is 22023');
select throws_ok($$ select public.adjust_credits('00000000-0000-4000-8000-0000000000c1', 5, 'subscription', 'no expiry') $$,
  '22023', null, 'subscription credits need an expiry');
select throws_ok($$ select public.adjust_credits('00000000-0000-4000-8000-0000000000c1', 5, 'purchased', 'expiry', now() + interval '1 day') $$,
  '22023', null, 'purchased credits take no expiry');
select throws_ok($$ select public.adjust_credits('00000000-0000-4000-8000-000000000999', 5, 'purchased', 'nobody') $$,
  'PT404', null, 'an unknown organization is PT404');
select is((public.adjust_credits('00000000-0000-4000-8000-0000000000c1', 70, 'subscription', 'Trial extension', now() + interval '10 days') #>> '{balance,subscription}'), '70',
  'expiring subscription credits can be granted with an expiry');
select is((select count(*)::int from public.operator_export_ledger('00000000-0000-4000-8000-0000000000c1', now() - interval '1 hour', now() + interval '1 hour')), 3,
  'refused adjustments wrote nothing');

-- ============================================================================
-- Operator: what stays the service role's
-- ============================================================================

select throws_ok($$ select public.add_billing_operator(tests.get_user_id('sam@operators.test')) $$, '42501', null,
  'an operator cannot appoint operators');
select throws_ok($$ select public.raise_operator_alert('reconciliation_drift', 'warning', 'x') $$, '42501', null,
  'an operator cannot raise operator alerts (the reconciliation job does)');
select throws_ok($$ select public.reconciliation_records('{}', '{}', '{}') $$, '42501', null,
  'an operator reads Stripe records only through the reconciliation route');
select throws_ok($$ select 1 from public.billing_operators $$, '42501', null,
  'nobody reads billing_operators through the API, operators included');
select is_empty($$ select 1 from public.organizations where id = '00000000-0000-4000-8000-0000000000c1' $$,
  'RLS is unchanged: an operator reads no organization''s rows directly');

-- ============================================================================
-- Service role
-- ============================================================================

select tests.authenticate_as_service_role();

select is(public.is_billing_operator(), true, 'the service role may do what operators do');
select is((public.adjust_credits('00000000-0000-4000-8000-0000000000c1', 1, 'purchased', 'service fix') #>> '{amount}'), '1',
  'the service role adjusts credits');
select is((select actor_id from public.credit_transactions
            where organization_id = '00000000-0000-4000-8000-0000000000c1' and description = 'service fix'), null,
  'an adjustment by the service role records no user');
select lives_ok($$ select public.add_billing_operator(tests.get_user_id('olivia@operators.test')) $$,
  'adding an operator twice changes nothing');
select throws_ok($$ select public.add_billing_operator('00000000-0000-4000-8000-000000000999') $$, 'PT404', null,
  'an unknown user cannot be made an operator');
select is(public.raise_operator_alert('reconciliation_drift', 'warning', 'Again', '', '{}', 'drift:test2'),
          public.raise_operator_alert('reconciliation_drift', 'warning', 'Again', '', '{}', 'drift:test2'),
  'the same open drift is one alert');
select ok((select count(*) = 18 from operator_calls), 'all eighteen operator functions are checked by persona below');
select is(public.reconciliation_records(array['sub_opA'], array['in_opA1', 'op-grant-a'], array['cus_opA', 'cus_nobody']) - 'live_subscriptions',
  jsonb_build_object(
    'subscriptions', jsonb_build_object('sub_opA', jsonb_build_object('organization_id', '00000000-0000-4000-8000-0000000000a1',
      'status', 'active', 'cancel_at_period_end', false,
      'current_period_start', (select current_period_start from public.organization_subscriptions where stripe_subscription_id = 'sub_opA'),
      'current_period_end', (select current_period_end from public.organization_subscriptions where stripe_subscription_id = 'sub_opA'))),
    'payments', jsonb_build_object('in_opA1', jsonb_build_object('organization_id', '00000000-0000-4000-8000-0000000000a1', 'status', 'paid')),
    'grants', jsonb_build_object('op-grant-a', jsonb_build_object('organization_id', '00000000-0000-4000-8000-0000000000a1', 'granted', 500)),
    'customers', jsonb_build_object('cus_opA', '00000000-0000-4000-8000-0000000000a1')),
  'the service role reads our records of the Stripe ids a reconciliation looked at (unknown ids are simply absent)');
select ok(public.reconciliation_records('{}', '{}', '{}') -> 'live_subscriptions' @> '[{"stripe_subscription_id": "sub_opC", "status": "past_due"}]',
  'and every subscription we hold as live');
select lives_ok($$ select public.operator_organizations() $$, 'the service role lists organizations');

-- ============================================================================
-- How an organization spends: reservations, spend limit, auto top-up (as the operator sees it)
-- ============================================================================

-- F gets 1,000 credits, then holds 100 in a live reservation (4 inferences at 25), settles one
-- of two storage months (20 reserved, 10 consumed), and holds 50 in a reservation that has
-- since lapsed (its expiry is moved into the past below, as time passing would).
select public.grant_credits('00000000-0000-4000-8000-0000000000f1', 1000, 'purchased', null, 'op-grant-f');
reset role;
create temporary table outstanding_before on commit drop as
  select (public.operator_overview(now() - interval '1 hour', now() + interval '1 hour') #>> '{credits,outstanding}')::bigint as credits;
create temporary table reservations_f (name text, id uuid) on commit drop;
grant select, insert on outstanding_before, reservations_f to service_role;
grant select on reservations_f to authenticated;
select tests.authenticate_as_service_role();
insert into reservations_f values
  ('live', (public.reserve_credits('00000000-0000-4000-8000-0000000000f1', 'ai_inference', 4, 'op-res-live', 900) ->> 'reservation_id')::uuid),
  ('settled', (public.reserve_credits('00000000-0000-4000-8000-0000000000f1', 'storage_gb_month', 2, 'op-res-settled', 900) ->> 'reservation_id')::uuid),
  ('lapsed', (public.reserve_credits('00000000-0000-4000-8000-0000000000f1', 'api_call_basic', 50, 'op-res-lapsed', 60) ->> 'reservation_id')::uuid);
select public.settle_reservation((select id from reservations_f where name = 'settled'), 1);
select public.set_spend_limit('00000000-0000-4000-8000-0000000000f1', 5000);
select public.set_auto_top_up('00000000-0000-4000-8000-0000000000f1', 'credits_1000', 200, 3);
reset role;
-- The card and the failed top-up as the webhook and the job would have left them.
insert into public.cards_on_file (organization_id, stripe_payment_method_id, brand, last4, exp_month, exp_year, observed_at)
values ('00000000-0000-4000-8000-0000000000f1', 'pm_opF', 'visa', '4242', 12, 2030, now());
update public.credit_reservations set expires_at = now() - interval '1 second'
 where id = (select id from reservations_f where name = 'lapsed');
insert into public.auto_top_ups (organization_id, credit_product_id, credits, amount, currency, status, stripe_payment_method_id,
  stripe_payment_intent_id, balance_at_claim, threshold, failure_code, failure_message, finished_at)
values ('00000000-0000-4000-8000-0000000000f1', (select id from public.credit_products where code = 'credits_1000'), 1000, 1000, 'usd',
  'failed', 'pm_opF', 'pi_opF1', 150, 200, 'card_declined', 'Your card was declined.', now());

select tests.authenticate_as_service_role();
select is((public.operator_overview(now() - interval '1 hour', now() + interval '1 hour') #>> '{credits,outstanding}')::bigint
            - (select credits from outstanding_before), -10::bigint,
  'outstanding credits still count what reservations hold (live or lapsed): only the settlement''s 10 left them');
select is(public.operator_organization('00000000-0000-4000-8000-0000000000f1') -> 'spend_limit',
          public.get_spend_limit('00000000-0000-4000-8000-0000000000f1'),
  'the operator''s spend-limit figures are the ones members read');

select tests.authenticate_as('olivia@operators.test');
select is(public.operator_organization('00000000-0000-4000-8000-0000000000f1') #> '{reservations,live}',
  jsonb_build_array(jsonb_build_object('id', (select id from reservations_f where name = 'live'), 'event_key', 'ai_inference',
    'quantity', 4, 'credits', 100, 'expires_at', now() + interval '900 seconds', 'created_at', now())),
  'an operator reads the live reservations: id, event, quantity, credits, expiry and creation');
select results_eq(
  $$ select r ->> 'id', r ->> 'status', (r ->> 'credits')::int, (r ->> 'credits_consumed')::int
       from jsonb_array_elements(public.operator_organization('00000000-0000-4000-8000-0000000000f1') #> '{reservations,recent_closed}')
              with ordinality e(r, n) order by n $$,
  $$ values ((select id::text from reservations_f where name = 'settled'), 'settled', 20, 10),
            ((select id::text from reservations_f where name = 'lapsed'), 'expired', 50, null::int) $$,
  'and the latest closed ones, newest first, with their status (one past its expiry is expired, swept or not)');
select is((public.operator_organization('00000000-0000-4000-8000-0000000000f1') -> 'spend_limit') - 'month_start',
  '{"monthly_credits": 5000, "consumed_this_month": 10, "reserved": 100, "remaining": 4890}'::jsonb,
  'an operator reads the spend limit and this month''s usage: consumed, reserved, remaining');
select is((public.operator_organization('00000000-0000-4000-8000-0000000000f1') -> 'auto_top_up') - 'updated_at',
  '{"enabled": true, "product_code": "credits_1000", "product_name": "1,000 credits", "product_credits": 1000,
    "threshold": 200, "monthly_limit": 3, "consecutive_failures": 0, "disabled_reason": null}'::jsonb,
  'an operator reads the auto top-up setting with its pack');
select is((public.operator_organization('00000000-0000-4000-8000-0000000000f1') -> 'card_on_file') - 'observed_at',
  '{"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}'::jsonb,
  'an operator reads the card on file');
select results_eq(
  $$ select t ->> 'status', (t ->> 'credits')::int, t ->> 'failure_code', t ->> 'failure_message'
       from jsonb_array_elements(public.operator_organization('00000000-0000-4000-8000-0000000000f1') -> 'top_ups') t $$,
  $$ values ('failed', 1000, 'card_declined', 'Your card was declined.') $$,
  'an operator reads the recent top-ups with their outcome and failure');
select is(public.operator_organization('00000000-0000-4000-8000-0000000000c1')
            - array['organization', 'subscriptions', 'balance', 'lots', 'ledger', 'history', 'alerts', 'notifications', 'members'],
  jsonb_build_object('reservations', '{"live": [], "recent_closed": []}'::jsonb,
    'spend_limit', jsonb_build_object('monthly_credits', null, 'month_start', (date_trunc('month', now() at time zone 'utc'))::date,
      'consumed_this_month', 0, 'reserved', 0, 'remaining', null),
    'auto_top_up', null, 'card_on_file', null, 'top_ups', '[]'::jsonb),
  'an organization with none of these has empty lists, no limit, no setting and no card');
select tests.authenticate_as_service_role();

-- ============================================================================
-- Owner, member, stranger, anon: nothing
-- ============================================================================

select tests.authenticate_as('owen@operators.test');
select is(public.is_billing_operator(), false, 'an owner is not a billing operator');
select throws_ok(c.statement, '42501', null, 'an owner cannot call ' || c.name) from operator_calls c order by c.name;

select tests.authenticate_as('mia@operators.test');
select is(public.is_billing_operator(), false, 'a member is not a billing operator');
select throws_ok(c.statement, '42501', null, 'a member cannot call ' || c.name)
  from operator_calls c order by c.name;

select tests.authenticate_as('sam@operators.test');
select is(public.is_billing_operator(), false, 'a stranger is not a billing operator');
select throws_ok(c.statement, '42501', null, 'a stranger cannot call ' || c.name)
  from operator_calls c order by c.name;

select tests.clear_authentication();
select throws_ok($$ select public.is_billing_operator() $$, '42501', null, 'anon cannot even ask whether it is an operator');
select throws_ok(c.statement, '42501', null, 'anon cannot call ' || c.name) from operator_calls c order by c.name;

-- Nothing the refused calls attempted happened.
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.billing_operators where user_id = tests.get_user_id('sam@operators.test')), 0,
  'nobody was made an operator by a refused call');
select is((select count(*)::int from public.credit_transactions
            where organization_id = '00000000-0000-4000-8000-0000000000a1' and kind = 'adjustment'), 0,
  'no refused adjustment reached the ledger');

select * from finish();
rollback;
