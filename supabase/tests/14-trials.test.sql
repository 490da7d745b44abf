-- Trials: the catalog's trial allowance (at most one month's), granted by the trial's $0
-- invoice instead of the interval's allowance and expiring when the trial ends; one trial per
-- owner, recorded when a trial starts and when someone becomes an owner of an organization
-- that had one; trial_eligibility for members; and a second trial that slips through (two
-- checkouts paid at once) grants nothing.

begin;
select plan(36);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user(email)
  from unnest(array['olive@trials.test', 'adam@trials.test', 'mia@trials.test', 'sam@trials.test',
                    'bea@trials.test', 'finn@trials.test']) as email;
insert into public.organizations (id, name) values
  ('71000000-0000-4000-8000-000000000001', 'Trial Co'),
  ('71000000-0000-4000-8000-000000000005', 'Finn''s');
insert into public.organization_members (organization_id, user_id, role) values
  ('71000000-0000-4000-8000-000000000001', tests.get_user_id('olive@trials.test'), 'owner'),
  ('71000000-0000-4000-8000-000000000001', tests.get_user_id('adam@trials.test'), 'admin'),
  ('71000000-0000-4000-8000-000000000001', tests.get_user_id('mia@trials.test'), 'member'),
  ('71000000-0000-4000-8000-000000000005', tests.get_user_id('finn@trials.test'), 'owner'),
  ('71000000-0000-4000-8000-000000000005', tests.get_user_id('olive@trials.test'), 'admin');
update public.subscription_plans
   set stripe_monthly_price_id = 'price_pro_m', stripe_annual_price_id = 'price_pro_y'
 where code = 'professional';

-- The id of an organization created by name through create_organization.
create function pg_temp.org(p_name text) returns uuid
language sql
as $$
  select id from public.organizations where name = p_name;
$$;

-- Shorthand: apply a Professional annual subscription (trialing until p_trial_end) to an organization.
create function pg_temp.apply_trial(p_org uuid, p_sub text, p_trial_end timestamptz, p_observed_at timestamptz,
  p_status text default 'trialing') returns uuid
language sql
as $$
  select public.apply_stripe_subscription(null, p_org, p_sub, 'cus_' || p_sub, 'price_pro_y', p_status,
    now() - interval '1 day', p_trial_end, now() - interval '1 day', p_trial_end, false, null, null, null, p_observed_at);
$$;

-- ============================================================================
-- Catalog
-- ============================================================================

select col_not_null('public', 'subscription_plans', 'trial_credits', 'every plan has a trial allowance');
select col_default_is('public', 'subscription_plans', 'trial_credits', '0', 'a plan grants no trial credits unless set');
select results_eq(
  $$ select code, trial_credits, monthly_credits from public.subscription_plans
      where code in ('starter', 'professional', 'enterprise') order by sort_order $$,
  $$ values ('starter'::text, 500, 1000), ('professional'::text, 2500, 5000), ('enterprise'::text, 0, 25000) $$,
  'the seed sets each plan''s trial allowance at or below one month''s allowance');
select throws_ok($$ update public.subscription_plans set trial_credits = monthly_credits + 1 where code = 'starter' $$,
  '23514', null, 'a trial allowance above one monthly allowance is refused');
select throws_ok($$ update public.subscription_plans set trial_credits = -1 where code = 'starter' $$,
  '23514', null, 'a negative trial allowance is refused');

-- ============================================================================
-- Owner, member, stranger, anon: eligibility before any trial
-- ============================================================================

select tests.authenticate_as('olive@trials.test');
select results_eq($$ select eligible, reason from public.trial_eligibility('71000000-0000-4000-8000-000000000001') $$,
  $$ values (true, null::text) $$, 'an owner who never had a trial may start one');
select tests.authenticate_as('mia@trials.test');
select results_eq($$ select eligible from public.trial_eligibility('71000000-0000-4000-8000-000000000001') $$,
  $$ values (true) $$, 'a member can see whether the organization may start a trial');
select tests.authenticate_as('sam@trials.test');
select throws_ok($$ select * from public.trial_eligibility('71000000-0000-4000-8000-000000000001') $$,
  '42501', null, 'a stranger cannot ask about another organization');
select tests.clear_authentication();
select throws_ok($$ select * from public.trial_eligibility('71000000-0000-4000-8000-000000000001') $$,
  '42501', null, 'anon cannot ask at all');

-- ============================================================================
-- Service role: the trial invoice grants the trial allowance, never the annual one
-- ============================================================================

select tests.authenticate_as_service_role();
select pg_temp.apply_trial('71000000-0000-4000-8000-000000000001', 'sub_t1', now() + interval '13 days', now());
select is(
  (public.apply_invoice_paid(null, '71000000-0000-4000-8000-000000000001', 'in_t1_trial', 'sub_t1',
     now() - interval '1 day', now() + interval '13 days', 0, 'usd', now()) ->> 'granted')::int,
  2500, 'the $0 trial invoice of an annual Professional subscription grants the trial allowance (2,500), not 60,000');
select is((select expires_at from public.credit_lots where reference = 'in_t1_trial'), now() + interval '13 days',
  'the trial''s credits expire when the trial ends');
select is((public.get_credit_balance('71000000-0000-4000-8000-000000000001') ->> 'subscription')::int, 2500,
  'the balance holds the trial allowance only');
select is(
  (public.apply_invoice_paid(null, '71000000-0000-4000-8000-000000000001', 'in_t1_trial', 'sub_t1',
     now() - interval '1 day', now() + interval '13 days', 0, 'usd', now()) ->> 'idempotent_replay')::boolean,
  true, 'the same trial invoice applied again grants nothing more');
select is(
  (public.apply_invoice_paid(null, '71000000-0000-4000-8000-000000000001', 'in_t1_trial_2', 'sub_t1',
     now(), now() + interval '1 year', 0, 'usd', now()) ->> 'granted')::int,
  0, 'another invoice whose period starts inside the trial (a bogus or plan-change one) grants nothing: one trial allowance per subscription');
select is((select description from public.billing_history where stripe_reference = 'in_t1_trial'),
  'Professional plan (yearly), free trial', 'the history says the invoice was a free trial');
select results_eq(
  $$ select t.grants_allowance, u.email::text from public.subscription_trials t
       join public.trial_owners o on o.subscription_trial_id = t.id
       join auth.users u on u.id = o.user_id
      where t.stripe_subscription_id = 'sub_t1' $$,
  $$ values (true, 'olive@trials.test'::text) $$,
  'the trial is recorded against the organization''s owner (not its admin or member)');

select pg_temp.apply_trial('71000000-0000-4000-8000-000000000001', 'sub_t1', now() + interval '2 days', now() + interval '1 second');
select is((select expires_at from public.credit_lots where reference = 'in_t1_trial'), now() + interval '2 days',
  'a trial ended early ends its credits then too');

select pg_temp.apply_trial('71000000-0000-4000-8000-000000000001', 'sub_t1', now() + interval '2 days', now() + interval '2 seconds', 'active');
select is(
  (public.apply_invoice_paid(null, '71000000-0000-4000-8000-000000000001', 'in_t1_year1', 'sub_t1',
     now() + interval '2 days', now() + interval '2 days' + interval '1 year', 49000, 'usd', now()) ->> 'granted')::int,
  60000, 'the first paid annual invoice after the trial grants the annual allowance');
select is((select expires_at from public.credit_lots where reference = 'in_t1_trial'), now() + interval '2 days',
  'and the trial''s leftover still ends with the trial');

-- ============================================================================
-- Owner: one trial per owner, whatever organization
-- ============================================================================

select tests.authenticate_as('olive@trials.test');
select results_eq($$ select eligible, reason from public.trial_eligibility('71000000-0000-4000-8000-000000000001') $$,
  $$ values (false, 'organization_had_trial'::text) $$, 'an organization that had a trial gets no second one');
select public.create_organization('Olive Again');
select results_eq(
  $$ select eligible, reason from public.trial_eligibility(pg_temp.org('Olive Again')) $$,
  $$ values (false, 'trial_used'::text) $$, 'a fresh organization of an owner who had a trial gets none');
select results_eq($$ select eligible, reason from public.trial_eligibility('71000000-0000-4000-8000-000000000005') $$,
  $$ values (false, 'trial_used'::text) $$,
  'an admin who had a trial cannot check out another owner''s organization with one');
select tests.authenticate_as('finn@trials.test');
select results_eq($$ select eligible from public.trial_eligibility('71000000-0000-4000-8000-000000000005') $$,
  $$ values (true) $$, 'that organization''s owner, who never had a trial, still may');

-- ============================================================================
-- Admin: not an owner when the trial started, so not recorded
-- ============================================================================

select tests.authenticate_as('adam@trials.test');
select public.create_organization('Adam''s');
select results_eq(
  $$ select eligible from public.trial_eligibility(pg_temp.org('Adam''s')) $$,
  $$ values (true) $$, 'an admin of a trial organization may still start a trial of their own');

-- ============================================================================
-- Owner: handing the organization over does not make its trial new
-- ============================================================================

select tests.authenticate_as('olive@trials.test');
select public.add_organization_member('71000000-0000-4000-8000-000000000001', tests.get_user_id('bea@trials.test'), 'owner');
select public.remove_organization_member('71000000-0000-4000-8000-000000000001', tests.get_user_id('olive@trials.test'));
select results_eq(
  $$ select eligible from public.trial_eligibility(pg_temp.org('Olive Again')) $$,
  $$ values (false) $$, 'an owner who left the trial organization still had the trial');
select tests.authenticate_as('bea@trials.test');
select ok(exists (select 1 from public.trial_owners where user_id = tests.get_user_id('bea@trials.test')),
  'the new owner of an organization that had a trial is recorded as having had it');
select public.create_organization('Bea''s');
select results_eq(
  $$ select eligible, reason from public.trial_eligibility(pg_temp.org('Bea''s')) $$,
  $$ values (false, 'trial_used'::text) $$, 'so a new organization of theirs gets no trial either');

-- ============================================================================
-- Service role: a second trial that slips through grants nothing
-- ============================================================================

-- Two checkouts opened before the first trial was recorded, both paid: Stripe starts both trials.
select tests.authenticate_as_service_role();
select pg_temp.apply_trial(pg_temp.org('Olive Again'), 'sub_t2', now() + interval '14 days', now());
select is(
  (public.apply_invoice_paid(null, pg_temp.org('Olive Again'), 'in_t2_trial', 'sub_t2',
     now() - interval '1 day', now() + interval '14 days', 0, 'usd', now()) ->> 'granted')::int,
  0, 'the trial invoice of an owner''s second trial grants no credits');
select is((public.get_credit_balance(pg_temp.org('Olive Again')) ->> 'subscription')::int, 0, 'the second organization has none to spend');
select is((select grants_allowance from public.subscription_trials where stripe_subscription_id = 'sub_t2'), false,
  'the second trial is recorded as granting nothing');
select is(
  (public.apply_invoice_paid(null, pg_temp.org('Olive Again'), 'in_t2_month', 'sub_t2',
     now() + interval '14 days', now() + interval '14 days' + interval '1 year', 49000, 'usd', now()) ->> 'granted')::int,
  60000, 'its first paid invoice grants the paid allowance as usual');

select throws_ok($$ delete from public.trial_owners $$, '42501', null,
  'the service role cannot erase who had a trial');
select throws_ok($$ update public.subscription_trials set grants_allowance = true $$, '42501', null,
  'nor rewrite whether a trial grants');

-- ============================================================================
-- Member and stranger: reading trial records
-- ============================================================================

select tests.authenticate_as('mia@trials.test');
select is((select count(*)::int from public.subscription_trials), 1, 'a member reads their organization''s trial');
select tests.authenticate_as('sam@trials.test');
select is((select count(*)::int from public.subscription_trials) + (select count(*)::int from public.trial_owners), 0,
  'a stranger reads no trial records');
select throws_ok($$ insert into public.subscription_trials (organization_id, stripe_subscription_id, trial_start, grants_allowance)
                    values ('71000000-0000-4000-8000-000000000001', 'sub_fake', now(), true) $$,
  '42501', null, 'no signed-in user can record a trial');

select * from finish();
rollback;
