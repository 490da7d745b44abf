-- Auto top-up: who may set it and with what values (SQLSTATEs), the card on file kept in step
-- with Stripe whatever order readings arrive in, the job's claim (below threshold only, one in
-- flight however often it runs, the monthly limit), credits once per PaymentIntent, failures
-- counted once per top-up and the third in a row turning it off, and members' read-only view.

begin;
select plan(70);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('otto@topup.test');    -- owner
select tests.create_user('ada@topup.test');     -- admin
select tests.create_user('max@topup.test');     -- member
select tests.create_user('sam@topup.test');     -- stranger (owner of another organization)

insert into public.organizations (id, name, stripe_customer_id) values
  ('eeeeeeee-0000-4000-8000-0000000000e1', 'Topped Up', 'cus_topup_e1'),
  ('eeeeeeee-0000-4000-8000-0000000000e2', 'Elsewhere', 'cus_topup_e2');
insert into public.organization_members (organization_id, user_id, role) values
  ('eeeeeeee-0000-4000-8000-0000000000e1', tests.get_user_id('otto@topup.test'), 'owner'),
  ('eeeeeeee-0000-4000-8000-0000000000e1', tests.get_user_id('ada@topup.test'), 'admin'),
  ('eeeeeeee-0000-4000-8000-0000000000e1', tests.get_user_id('max@topup.test'), 'member'),
  ('eeeeeeee-0000-4000-8000-0000000000e2', tests.get_user_id('sam@topup.test'), 'owner');

create temporary view org_top_ups as
  select * from public.auto_top_ups where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1';
create temporary view org_notifications as
  select * from public.notifications where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1';
create temporary table failures (n int, result jsonb);
grant select on org_top_ups, org_notifications to service_role;
grant all on failures to service_role;

-- ============================================================================
-- Owner and admin: the setting
-- ============================================================================

select tests.authenticate_as('otto@topup.test');
select lives_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_1000', 100, 2) $$,
  'an owner turns auto top-up on with a pack, a threshold and a monthly limit');
select is((select row(s.enabled, p.code, s.threshold, s.monthly_limit)::text
             from public.auto_top_up_settings s join public.credit_products p on p.id = s.credit_product_id
            where s.organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'),
  row(true, 'credits_1000', 100, 2)::text, 'the owner reads the setting back');
select throws_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_1000', 0) $$,
  '22023', null, 'a threshold of zero is refused with 22023');
select throws_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_1000', null) $$,
  '22023', null, 'a missing threshold is refused with 22023');
select throws_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_1000', 100, 0) $$,
  '22023', null, 'a monthly limit of zero is refused with 22023');
select throws_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_1000', 100, 101) $$,
  '22023', null, 'a monthly limit above 100 is refused with 22023');
select throws_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_none', 100) $$,
  'PT404', null, 'an unknown credit pack is refused with PT404');
select throws_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e2', 'credits_1000', 100) $$,
  '42501', null, 'an owner of one organization cannot set another''s');
select is((select threshold from public.auto_top_up_settings where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'), 100,
  'refused calls changed nothing');
select throws_ok($$ update public.auto_top_up_settings set threshold = 1 $$, '42501', null,
  'the table itself is not writable, even by an owner');
reset role;

select tests.authenticate_as('ada@topup.test');
select lives_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_1000', 100) $$,
  'an admin changes it too (the monthly limit defaults to 3)');
select is((select monthly_limit from public.auto_top_up_settings where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'), 3,
  'the default monthly limit is 3');
reset role;

-- ============================================================================
-- Member and stranger: read-only, and nothing of other organizations
-- ============================================================================

select tests.authenticate_as('max@topup.test');
select throws_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_5000', 50) $$,
  '42501', null, 'a member cannot change the setting');
select throws_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', null, null) $$,
  '42501', null, 'a member cannot turn it off either');
select is((select threshold from public.auto_top_up_settings where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'), 100,
  'a member reads the setting');
reset role;

select tests.authenticate_as('sam@topup.test');
select is((select count(*)::int from public.auto_top_up_settings where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'), 0,
  'a stranger sees no setting of another organization');
reset role;

select tests.clear_authentication();
select throws_ok($$ select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_1000', 100) $$,
  '42501', null, 'anon cannot call set_auto_top_up');
select throws_ok($$ select count(*) from public.auto_top_ups $$, '42501', null, 'anon cannot read top-ups');
reset role;

-- ============================================================================
-- Service role: the card on file
-- ============================================================================

select tests.authenticate_as_service_role();

select public.apply_card_on_file(null, 'eeeeeeee-0000-4000-8000-0000000000e1', 'pm_new', 'visa', '4242', 12, 2034,
  '2026-12-01 10:00:02+00');
select public.apply_card_on_file(null, 'eeeeeeee-0000-4000-8000-0000000000e1', 'pm_old', 'mastercard', '4444', 1, 2030,
  '2026-12-01 10:00:01+00');
select is((select stripe_payment_method_id || ' ' || brand || ' ' || last4 || ' ' || exp_month || '/' || exp_year
             from public.cards_on_file where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'),
  'pm_new visa 4242 12/2034', 'an older reading of the customer arriving late does not bring back the replaced card');
select throws_ok($$ select public.apply_card_on_file(null, 'eeeeeeee-0000-4000-8000-0000000000e1', 'card_1', 'visa', '4242', 1, 2030, now()) $$,
  '22023', null, 'a payment method id that is not pm_... is refused with 22023');
select throws_ok($$ select public.apply_card_on_file(null, 'eeeeeeee-0000-4000-8000-0000000000e1', 'pm_x', 'visa', '42', 1, 2030, now()) $$,
  '22023', null, 'a card without four last digits is refused with 22023');

-- ============================================================================
-- Service role: the claim (the job)
-- ============================================================================

-- 500 credits, threshold 100: nothing to do.
select public.grant_credits('eeeeeeee-0000-4000-8000-0000000000e1', 500, 'purchased', null, 'topup-seed');
select is((select count(*)::int from public.claim_auto_top_ups()), 0, 'a balance at or above the threshold makes no top-up');

-- Twenty consumptions take it below the threshold (20 × 25 = 500 > 420: the balance ends at 0).
select public.consume_credits('eeeeeeee-0000-4000-8000-0000000000e1', 'ai_inference', 1, 'topup-consume-' || i)
  from generate_series(1, 17) as i;
select is((public.get_credit_balance('eeeeeeee-0000-4000-8000-0000000000e1') ->> 'total')::int, 75, 'the balance is below the threshold');

select is((select count(*)::int from public.claim_auto_top_ups()), 1, 'the claim makes one top-up and hands it to the job');
select is((select count(*)::int from public.claim_auto_top_ups()), 0, 'claiming again makes no second top-up while one is in flight');
select is((select count(*)::int from org_top_ups), 1, 'one top-up row');
select is((select row(status, credits, amount, currency, stripe_payment_method_id, balance_at_claim, threshold)::text from org_top_ups),
  row('pending', 1000, 1000, 'usd', 'pm_new', 75, 100)::text,
  'the top-up records the pack, its price, the card on file and the balance that triggered it');
select is((select idempotency_key from org_top_ups), (select 'auto_top_up:' || id from org_top_ups),
  'its Stripe idempotency key is derived from the top-up id');
select is((select count(*)::int from public.claim_auto_top_ups()), 0,
  'a pending top-up already taken up is not handed out again within its two-minute lease');

select throws_ok($$ insert into public.auto_top_ups (organization_id, credit_product_id, credits, amount, currency, stripe_payment_method_id, balance_at_claim, threshold)
                   select organization_id, credit_product_id, credits, amount, currency, stripe_payment_method_id, 0, 0 from org_top_ups $$,
  '42501', null, 'the service role cannot write top-ups around the functions');

-- The job created the PaymentIntent.
select lives_ok($$ select public.record_auto_top_up_payment_intent('eeeeeeee-0000-4000-8000-0000000000e1',
                    (select id from org_top_ups), 'pi_topup_1') $$, 'the job records the PaymentIntent');
select is((select status::text from org_top_ups), 'processing', 'the top-up is processing');
select is((select count(*)::int from public.claim_auto_top_ups()), 0, 'a processing top-up is left to the run that created it for two minutes');
reset role;
update public.auto_top_ups set attempted_at = attempted_at - interval '3 minutes'
 where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1';
select tests.authenticate_as_service_role();
select is((select stripe_payment_intent_id from public.claim_auto_top_ups()), 'pi_topup_1',
  'after that, a run takes it up again to read its PaymentIntent back from Stripe (the outcome was never applied)');
select throws_ok($$ select public.record_auto_top_up_payment_intent('eeeeeeee-0000-4000-8000-0000000000e1',
                    (select id from org_top_ups), 'pi_other') $$, 'PT409', null, 'another PaymentIntent for the same top-up is PT409');
select throws_ok($$ select public.record_auto_top_up_payment_intent('eeeeeeee-0000-4000-8000-0000000000e2',
                    (select id from org_top_ups), 'pi_topup_1') $$, 'PT404', null, 'a top-up of another organization is PT404');

-- ============================================================================
-- Service role: success, once per PaymentIntent
-- ============================================================================

select public.apply_payment_intent_succeeded(null, 'eeeeeeee-0000-4000-8000-0000000000e1', (select id from org_top_ups),
  'pi_topup_1', 1000, 'usd', '2026-12-01 10:05:00+00', '{"receipt_url": "https://pay.stripe.com/receipts/r1"}');
select public.apply_payment_intent_succeeded(null, 'eeeeeeee-0000-4000-8000-0000000000e1', (select id from org_top_ups),
  'pi_topup_1', 1000, 'usd', '2026-12-01 10:05:00+00', '{"receipt_url": "https://pay.stripe.com/receipts/r1"}');
select is((public.get_credit_balance('eeeeeeee-0000-4000-8000-0000000000e1') ->> 'total')::int, 1075,
  'the pack''s credits arrive once, however often the success is reported');
select is((select count(*)::int from public.credit_lots where reference = 'pi_topup_1'), 1, 'one purchased lot, keyed by the PaymentIntent');
select is((select row(kind, status, amount, receipt_url)::text from public.billing_history where stripe_reference = 'pi_topup_1'),
  row('credit_purchase', 'paid', 1000, 'https://pay.stripe.com/receipts/r1')::text, 'one history row with the receipt');
select is((select count(*)::int from org_notifications where type = 'auto_top_up.succeeded'), 1,
  'one auto_top_up.succeeded notification');
select is((select (payload -> 'data' ->> 'credits')::int from org_notifications where type = 'auto_top_up.succeeded'), 1000,
  'the notification says how many credits arrived');
select is((select status::text from org_top_ups), 'succeeded', 'the top-up succeeded');

-- A late failure report for the same PaymentIntent changes nothing.
select is((public.apply_payment_intent_failed(null, 'eeeeeeee-0000-4000-8000-0000000000e1', (select id from org_top_ups),
  'pi_topup_1', 'card_declined', 'late') ->> 'counted')::boolean, false, 'a failure reported after the success is not counted');
select is((select status::text from org_top_ups), 'succeeded', 'and the top-up stays succeeded');

-- ============================================================================
-- Service role: the monthly limit (2 this month)
-- ============================================================================

-- A threshold one pack cannot reach (balance 1,075 -> 2,075 < 5,000): only the limit stops a third.
select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_1000', 5000, 2);
select is((select count(*)::int from public.claim_auto_top_ups()), 1, 'still below the new threshold: a second top-up');
select public.apply_payment_intent_succeeded(null, 'eeeeeeee-0000-4000-8000-0000000000e1',
  (select id from org_top_ups where status = 'pending'), 'pi_topup_2', 1000, 'usd', now(), '{}');
select is((select count(*)::int from public.claim_auto_top_ups()), 0, 'the monthly limit of 2 holds: no third top-up this month');
reset role;
-- Last month's top-ups (as the table owner: nobody else may rewrite them).
update public.auto_top_ups set created_at = created_at - interval '40 days'
 where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1';
reset role;
select tests.authenticate_as_service_role();

-- ============================================================================
-- Service role: failures, once per top-up; three in a row turn it off
-- ============================================================================

select public.apply_card_on_file(null, 'eeeeeeee-0000-4000-8000-0000000000e1', 'pm_declines', 'visa', '0341', 1, 2031, now());
select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_1000', 10000, 2);
select is((select count(*)::int from public.claim_auto_top_ups()), 1, 'a new month: a top-up again');
insert into failures select 1, public.apply_payment_intent_failed(null, 'eeeeeeee-0000-4000-8000-0000000000e1',
  (select id from org_top_ups where status = 'pending'), 'pi_fail_1', 'card_declined', 'Your card was declined.');
select is((select (result ->> 'failures_in_a_row')::int from failures where n = 1), 1, 'the first failure is counted');
select is((public.apply_payment_intent_failed(null, 'eeeeeeee-0000-4000-8000-0000000000e1',
  (select id from org_top_ups where stripe_payment_intent_id = 'pi_fail_1'), 'pi_fail_1', 'card_declined', 'again') ->> 'counted')::boolean,
  false, 'the same failure reported again (the job and the webhook) is counted once');
select is((select count(*)::int from public.billing_alerts where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'
             and kind = 'auto_top_up_failed' and dismissed_at is null), 1, 'one auto_top_up_failed alert');
select is((select count(*)::int from public.notification_emails e join public.billing_alerts a on a.id = e.alert_id
            where a.organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1' and a.kind = 'auto_top_up_failed'), 2,
  'the alert emails the owner and the admin');
select is((select count(*)::int from org_notifications where type = 'auto_top_up.failed'), 1, 'one auto_top_up.failed notification');
select is((select status::text from public.billing_history where stripe_reference = 'pi_fail_1'), 'failed',
  'the failed payment is in the history');

select is((select count(*)::int from public.claim_auto_top_ups()), 1, 'after a failure the next run tries again (failed top-ups do not count towards the monthly limit)');
insert into failures select 2, public.apply_payment_intent_failed(null, 'eeeeeeee-0000-4000-8000-0000000000e1',
  (select id from org_top_ups where status = 'pending'), 'pi_fail_2', 'card_declined', 'Your card was declined.');
select is((select count(*)::int from public.claim_auto_top_ups()), 1, 'and again');
insert into failures select 3, public.apply_payment_intent_failed(null, 'eeeeeeee-0000-4000-8000-0000000000e1',
  (select id from org_top_ups where status = 'pending'), 'pi_fail_3', 'card_declined', 'Your card was declined.');
select is((select (result ->> 'disabled')::boolean from failures where n = 3), true, 'the third failure in a row turns auto top-up off');
select is((select row(enabled, disabled_reason)::text from public.auto_top_up_settings where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'),
  row(false, 'three top-up payments failed in a row')::text, 'the setting is off and says why');
select is((select count(*)::int from public.billing_alerts where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'
             and title = 'Auto top-up turned off'), 1, 'an alert says auto top-up was turned off');
select is((select count(*)::int from public.claim_auto_top_ups()), 0, 'no top-up while it is off');

-- ============================================================================
-- Service role: authentication required
-- ============================================================================

select public.set_auto_top_up('eeeeeeee-0000-4000-8000-0000000000e1', 'credits_1000', 10000, 10);
select is((select consecutive_failures from public.auto_top_up_settings where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'), 0,
  'turning it on again starts the failures in a row afresh');
select is((select count(*)::int from public.claim_auto_top_ups()), 1, 'a top-up once it is on again');
select public.apply_payment_intent_failed(null, 'eeeeeeee-0000-4000-8000-0000000000e1',
  (select id from org_top_ups where status = 'pending'), 'pi_auth_1', 'authentication_required', 'Authentication required.',
  'https://hooks.stripe.test/authenticate/pi_auth_1');
select is((select status::text from org_top_ups where stripe_payment_intent_id = 'pi_auth_1'), 'requires_action',
  'a card that needs authentication leaves the top-up waiting for the customer');
select ok((select message like '%https://hooks.stripe.test/authenticate/pi_auth_1%' from public.billing_alerts
            where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1' and data ->> 'stripe_payment_intent_id' = 'pi_auth_1'),
  'the alert (and so the owners'' email) carries the link to complete the payment');
select is((select count(*)::int from public.claim_auto_top_ups()), 0, 'no second top-up while it waits for authentication');
select public.apply_payment_intent_succeeded(null, 'eeeeeeee-0000-4000-8000-0000000000e1',
  (select id from org_top_ups where stripe_payment_intent_id = 'pi_auth_1'), 'pi_auth_1', 1000, 'usd', now(), '{}');
select is((select status::text from org_top_ups where stripe_payment_intent_id = 'pi_auth_1'), 'succeeded',
  'completing the authentication succeeds the top-up and credits it');
reset role;

-- ============================================================================
-- Member: reads the card and the top-ups, writes nothing
-- ============================================================================

select tests.authenticate_as('max@topup.test');
select is((select last4 from public.cards_on_file where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'), '0341',
  'a member reads the card on file');
select ok((select count(*) from public.auto_top_ups where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1') > 0,
  'a member reads the organization''s top-ups');
select throws_ok($$ select public.claim_auto_top_ups() $$, '42501', null, 'a member cannot run the claim');
select throws_ok($$ select public.apply_payment_intent_succeeded(null, 'eeeeeeee-0000-4000-8000-0000000000e1',
                    gen_random_uuid(), 'pi_x', 1, 'usd', now(), '{}') $$, '42501', null, 'nor report a payment');
reset role;

select tests.authenticate_as('sam@topup.test');
select is((select count(*)::int from public.auto_top_ups where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1')
         + (select count(*)::int from public.cards_on_file where organization_id = 'eeeeeeee-0000-4000-8000-0000000000e1'), 0,
  'a stranger sees neither the top-ups nor the card of another organization');
reset role;

select * from finish();
rollback;
