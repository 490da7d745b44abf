-- Alerts that no longer apply resolve by themselves (resolved, not dismissed): the low-balance
-- alert when the balance is back (a grant, a release, a lowered threshold), a failed payment
-- when its invoice is paid or the subscription is active again, a failed top-up when one
-- succeeds. Nothing resolves on the wrong event; a resolved alert lets a new one be raised;
-- members read the resolution. And the spend_limit alert the billing function raises after a
-- PT429 refusal (once per month).

begin;
select plan(40);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('rho@resolve.test');   -- owner of every organization here
select tests.create_user('mel@resolve.test');   -- member of L
select tests.create_user('sly@resolve.test');   -- stranger

insert into public.organizations (id, name, low_balance_threshold, stripe_customer_id) values
  ('26000000-0000-4000-8000-00000000000a', 'Low balance', 100, null),
  ('26000000-0000-4000-8000-00000000000b', 'Payments', 0, 'cus_resolve_p'),
  ('26000000-0000-4000-8000-00000000000c', 'Top-ups', 0, 'cus_resolve_t'),
  ('26000000-0000-4000-8000-00000000000d', 'Other top-ups', 0, 'cus_resolve_o'),
  ('26000000-0000-4000-8000-00000000000e', 'Spend limit', 0, null),
  ('26000000-0000-4000-8000-00000000000f', 'No limit', 0, null);
insert into public.organization_members (organization_id, user_id, role)
  select o.id, tests.get_user_id('rho@resolve.test'), 'owner'
    from public.organizations o where o.id::text like '26000000-%';
insert into public.organization_members (organization_id, user_id, role) values
  ('26000000-0000-4000-8000-00000000000a', tests.get_user_id('mel@resolve.test'), 'member'),
  ('26000000-0000-4000-8000-00000000000e', tests.get_user_id('mel@resolve.test'), 'member');
update public.subscription_plans
   set stripe_monthly_price_id = 'price_resolve_m', stripe_annual_price_id = 'price_resolve_y'
 where code = 'starter';

create temporary view l_alerts as
  select * from public.billing_alerts where organization_id = '26000000-0000-4000-8000-00000000000a' and kind = 'low_balance';
grant select on l_alerts to authenticated, service_role;

-- ============================================================================
-- Low balance
-- ============================================================================

select public.grant_credits('26000000-0000-4000-8000-00000000000a', 150, 'purchased', null, 'cs_resolve_l1');
select public.consume_credits('26000000-0000-4000-8000-00000000000a', 'storage_gb_month', 6);  -- 90: crosses
select is((select count(*)::int from l_alerts where resolved_at is null and dismissed_at is null), 1,
  'crossing below the threshold opens a low_balance alert');
select is((select title || ' / ' || split_part(message, '.', 1) from l_alerts),
  'Credit balance is low / The balance is below your 100-credit threshold',
  'its words are true for as long as it is open (no balance figure that goes stale)');
select is((select (data ->> 'balance')::int from l_alerts), 90, 'the balance at the crossing is in its data');

select public.consume_credits('26000000-0000-4000-8000-00000000000a', 'api_call_basic', 5);       -- 85
select is((select count(*)::int from l_alerts where resolved_at is null), 1, 'consumption never resolves it');
select public.grant_credits('26000000-0000-4000-8000-00000000000a', 10, 'purchased', null, 'cs_resolve_l2');  -- 95
select is((select count(*)::int from l_alerts where resolved_at is null), 1,
  'a grant that leaves the balance below the threshold does not resolve it');

select tests.authenticate_as('rho@resolve.test');
select set_config('t.r1', public.reserve_credits('26000000-0000-4000-8000-00000000000a', 'storage_gb_month', 1)::text, true);  -- 85
reset role;
select public.grant_credits('26000000-0000-4000-8000-00000000000a', 10, 'purchased', null, 'cs_resolve_l3');  -- 95
select is((select count(*)::int from l_alerts where resolved_at is null), 1, 'still below: still open');
select tests.authenticate_as('rho@resolve.test');
select public.release_reservation((current_setting('t.r1')::jsonb ->> 'reservation_id')::uuid);  -- 105
reset role;
select is((select row(resolved_reason, dismissed_at is null, dismissed_by is null, (data ->> 'resolved_balance')::int)::text from l_alerts),
  row('balance_restored', true, true, 105)::text,
  'a release that takes the balance back above the threshold resolves it (resolved, not dismissed)');
select is((select count(*)::int from public.notifications
            where organization_id = '26000000-0000-4000-8000-00000000000a' and type = 'alert.raised'), 1,
  'resolving raises nothing new');

select public.consume_credits('26000000-0000-4000-8000-00000000000a', 'storage_gb_month', 1);  -- 95: crosses again
select is((select count(*)::int from l_alerts), 2, 'the next crossing after a resolved alert raises a new one');
select is((select count(*)::int from l_alerts where resolved_at is null and dismissed_at is null), 1, 'one of them open');

select public.grant_credits('26000000-0000-4000-8000-00000000000a', 5, 'purchased', null, 'cs_resolve_l4');  -- 100
select is((select count(*)::int from l_alerts where resolved_at is null), 0,
  'a grant that lands exactly on the threshold resolves it (back to the threshold is not below it)');
select public.consume_credits('26000000-0000-4000-8000-00000000000a', 'api_call_basic', 5);  -- 95: crosses
select tests.authenticate_as('rho@resolve.test');
select public.set_low_balance_threshold('26000000-0000-4000-8000-00000000000a', 200);
reset role;
select is((select count(*)::int from l_alerts where resolved_at is null), 1, 'raising the threshold resolves nothing');
select tests.authenticate_as('rho@resolve.test');
select public.set_low_balance_threshold('26000000-0000-4000-8000-00000000000a', 90);
reset role;
select is((select count(*)::int from l_alerts where resolved_reason = 'threshold_lowered'), 1,
  'lowering the threshold to or below the balance resolves it');
select is((select count(*)::int from l_alerts where resolved_at is null), 0, 'no low-balance alert is left open');

-- Members read the resolution; the dashboard's list (neither dismissed nor resolved) is empty.
select tests.authenticate_as('mel@resolve.test');
select is((select count(*)::int from public.billing_alerts
            where organization_id = '26000000-0000-4000-8000-00000000000a' and resolved_at is not null), 3,
  'a member reads the resolved alerts with when and why');
select is((select count(*)::int from public.billing_alerts
            where organization_id = '26000000-0000-4000-8000-00000000000a' and dismissed_at is null and resolved_at is null), 0,
  'and the open list is empty');
select throws_ok($$ update public.billing_alerts set resolved_at = null $$, '42501', null,
  'a member cannot unresolve alerts');
reset role;
select tests.authenticate_as('sly@resolve.test');
select is((select count(*)::int from public.billing_alerts where organization_id = '26000000-0000-4000-8000-00000000000a'), 0,
  'a stranger reads none of them');
reset role;

-- ============================================================================
-- Failed payments and past due
-- ============================================================================

select tests.authenticate_as_service_role();
create function pg_temp.apply_sub(p_status text, p_observed_at timestamptz) returns uuid
language sql
as $$
  select public.apply_stripe_subscription(null, '26000000-0000-4000-8000-00000000000b', 'sub_resolve_p', 'cus_resolve_p',
    'price_resolve_m', p_status, '2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z', null, null, false,
    null, null, null, p_observed_at);
$$;
select pg_temp.apply_sub('active', '2026-11-01T00:00:10Z');
select pg_temp.apply_sub('past_due', '2026-11-02T00:00:00Z');
select public.apply_invoice_payment_failed(null, '26000000-0000-4000-8000-00000000000b', 'in_resolve_1', 'sub_resolve_p',
  1900, 'usd', '2026-11-02T00:00:00Z');
select public.apply_invoice_payment_failed(null, '26000000-0000-4000-8000-00000000000b', 'in_resolve_2', 'sub_resolve_p',
  1900, 'usd', '2026-11-02T00:00:00Z');
create temporary view p_open as
  select dedupe_key from public.billing_alerts
   where organization_id = '26000000-0000-4000-8000-00000000000b' and dismissed_at is null and resolved_at is null;
select is(array(select dedupe_key from p_open order by dedupe_key),
  array['payment_failed:in_resolve_1', 'payment_failed:in_resolve_2', 'subscription:sub_resolve_p:active',
        'subscription:sub_resolve_p:past_due'],
  'two failed invoices and the past-due subscription are open');

select public.apply_invoice_paid(null, '26000000-0000-4000-8000-00000000000b', 'in_resolve_1', 'sub_resolve_p',
  '2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z', 1900, 'usd', '2026-11-03T00:00:00Z');
select is((select row(resolved_reason, dismissed_at is null)::text from public.billing_alerts
            where dedupe_key = 'payment_failed:in_resolve_1'), row('invoice_paid', true)::text,
  'paying an invoice resolves its failed-payment alert (not a dismissal)');
select is(array(select dedupe_key from p_open order by dedupe_key),
  array['payment_failed:in_resolve_2', 'subscription:sub_resolve_p:active', 'subscription:sub_resolve_p:past_due'],
  'another invoice''s failure and the past-due state stay open');

select pg_temp.apply_sub('past_due', '2026-11-03T00:00:00Z');
select is((select count(*)::int from p_open), 3, 'a past-due reading again resolves nothing');
select pg_temp.apply_sub('active', '2026-11-04T00:00:00Z');
select is(array(select dedupe_key from p_open order by dedupe_key), array['subscription:sub_resolve_p:active'],
  'the subscription active again resolves the past-due alert and the remaining failed payment');
select is((select resolved_reason from public.billing_alerts where dedupe_key = 'subscription:sub_resolve_p:past_due'),
  'subscription_active', 'with the reason');

select pg_temp.apply_sub('past_due', '2026-11-05T00:00:00Z');
select is((select count(*)::int from p_open where dedupe_key = 'subscription:sub_resolve_p:past_due'), 1,
  'past due again later raises a new past-due alert');
reset role;

-- ============================================================================
-- Auto top-up
-- ============================================================================

insert into public.auto_top_ups (organization_id, id, credit_product_id, credits, amount, currency, status,
                                 stripe_payment_method_id, stripe_payment_intent_id, balance_at_claim, threshold)
select o.id, t.id::uuid, p.id, 1000, 1000, 'usd', 'processing', 'pm_resolve', t.pi, 0, 100
  from (values ('26000000-0000-4000-8000-00000000000c', '26000000-0000-4000-8000-0000000000c1', 'pi_resolve_c1'),
               ('26000000-0000-4000-8000-00000000000d', '26000000-0000-4000-8000-0000000000d1', 'pi_resolve_d1'))
         as t (org, id, pi)
  join public.organizations o on o.id = t.org::uuid
  cross join public.credit_products p where p.code = 'credits_1000';
insert into public.auto_top_up_settings (organization_id, credit_product_id, threshold, monthly_limit, enabled)
select o.id, p.id, 100, 3, false from public.organizations o cross join public.credit_products p
 where o.id = '26000000-0000-4000-8000-00000000000c' and p.code = 'credits_1000';
-- Auto top-up was turned off after failures in a row (what apply_payment_intent_failed raises).
select private.raise_alert('26000000-0000-4000-8000-00000000000c', 'auto_top_up_failed', 'critical', 'Auto top-up turned off',
  '', '{"disabled": true}', 'auto_top_up_disabled:26000000-0000-4000-8000-0000000000c0');

select tests.authenticate_as_service_role();
create temporary view t_open as
  select dedupe_key from public.billing_alerts
   where organization_id = '26000000-0000-4000-8000-00000000000c' and dismissed_at is null and resolved_at is null;
select public.apply_payment_intent_failed(null, '26000000-0000-4000-8000-00000000000c', '26000000-0000-4000-8000-0000000000c1',
  'pi_resolve_c1', 'card_declined', 'Your card was declined.');
select is((select count(*)::int from t_open where dedupe_key like 'auto_top_up_failed:%'), 1, 'a failed top-up opens its alert');
reset role;
-- The next top-up (one in flight at a time).
insert into public.auto_top_ups (organization_id, id, credit_product_id, credits, amount, currency, status,
                                 stripe_payment_method_id, stripe_payment_intent_id, balance_at_claim, threshold)
select '26000000-0000-4000-8000-00000000000c', '26000000-0000-4000-8000-0000000000c2', p.id, 1000, 1000, 'usd', 'processing',
       'pm_resolve', 'pi_resolve_c2', 0, 100
  from public.credit_products p where p.code = 'credits_1000';
select tests.authenticate_as_service_role();
select public.apply_payment_intent_succeeded(null, '26000000-0000-4000-8000-00000000000d', '26000000-0000-4000-8000-0000000000d1',
  'pi_resolve_d1', 1000, 'usd', now());
select is((select count(*)::int from t_open), 2, 'another organization''s successful top-up resolves nothing here');
select public.apply_payment_intent_succeeded(null, '26000000-0000-4000-8000-00000000000c', '26000000-0000-4000-8000-0000000000c2',
  'pi_resolve_c2', 1000, 'usd', now());
select is(array(select dedupe_key from t_open), array['auto_top_up_disabled:26000000-0000-4000-8000-0000000000c0'],
  'a successful top-up resolves the failed one''s alert; "turned off" stays while it is off');
select is((select resolved_reason from public.billing_alerts
            where dedupe_key = 'auto_top_up_failed:26000000-0000-4000-8000-0000000000c1'), 'auto_top_up_succeeded',
  'with the reason');
reset role;
select tests.authenticate_as('rho@resolve.test');
select public.set_auto_top_up('26000000-0000-4000-8000-00000000000c', 'credits_1000', 100);
reset role;
select is((select count(*)::int from t_open), 0, 'turning auto top-up on again resolves "turned off"');

-- ============================================================================
-- Spend limit: the alert after a refusal over HTTP
-- ============================================================================

select public.grant_credits('26000000-0000-4000-8000-00000000000e', 1000, 'purchased', null, 'cs_resolve_s');
select tests.authenticate_as('rho@resolve.test');
select public.set_spend_limit('26000000-0000-4000-8000-00000000000e', 100);
select public.consume_credits('26000000-0000-4000-8000-00000000000e', 'storage_gb_month', 9);  -- 90 of 100
select throws_ok($$ select public.consume_credits('26000000-0000-4000-8000-00000000000e', 'storage_gb_month', 2) $$,
  'PT429', null, 'a consumption past the limit is refused');
reset role;
create temporary view s_alerts as
  select * from public.billing_alerts where organization_id = '26000000-0000-4000-8000-00000000000e' and kind = 'spend_limit';
grant select on s_alerts to service_role;
select is((select count(*)::int from s_alerts), 0, 'the refused call itself leaves no alert (it rolled back)');

select tests.authenticate_as('mel@resolve.test');
select throws_ok($$ select public.note_spend_limit_refused('26000000-0000-4000-8000-00000000000e') $$, '42501', null,
  'a member cannot call note_spend_limit_refused');
reset role;
select tests.authenticate_as_service_role();
select isnt(public.note_spend_limit_refused('26000000-0000-4000-8000-00000000000e'), null,
  'the service role raises the month''s spend_limit alert after a refusal');
select is((select count(*)::int from s_alerts), 1, 'one alert');
select is(public.note_spend_limit_refused('26000000-0000-4000-8000-00000000000e'), (select id from s_alerts),
  'a second refusal returns the same alert and raises no other');
select is((select message from s_alerts),
  'Usage this month reached the monthly spend limit of 100 credits. Usage beyond it is refused until next month or a higher limit.',
  'its words do not depend on the usage figure at the refusal');
reset role;
update public.billing_alerts set dismissed_at = now() where organization_id = '26000000-0000-4000-8000-00000000000e';
select tests.authenticate_as_service_role();
select is(public.note_spend_limit_refused('26000000-0000-4000-8000-00000000000e'), null,
  'once dismissed, later refusals this month raise nothing (once per month)');
select is(public.note_spend_limit_refused('26000000-0000-4000-8000-00000000000f'), null,
  'an organization without a limit gets no alert');
select throws_ok($$ select public.note_spend_limit_refused('26000000-0000-4000-8000-0000000000ff') $$, 'PT404', null,
  'an unknown organization is PT404');
reset role;

select * from finish();
rollback;
