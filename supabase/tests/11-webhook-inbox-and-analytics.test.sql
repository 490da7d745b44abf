-- The Stripe event inbox (service role only; redeliveries counted, never re-applied; parked
-- events re-driven) and the analytics: daily usage through RLS, the service overview, the
-- unusual-usage detector.

begin;
select plan(26);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('una@inbox.test');  -- owner of U
select tests.create_user('val@inbox.test');  -- owner of V

insert into public.organizations (id, name) values
  ('11111111-0000-4000-8000-000000000001', 'U'),
  ('22222222-0000-4000-8000-000000000002', 'V');
insert into public.organization_members (organization_id, user_id, role) values
  ('11111111-0000-4000-8000-000000000001', tests.get_user_id('una@inbox.test'), 'owner'),
  ('22222222-0000-4000-8000-000000000002', tests.get_user_id('val@inbox.test'), 'owner');

select public.grant_credits('11111111-0000-4000-8000-000000000001', 1000, 'purchased', null, 'cs_u');
select public.grant_credits('22222222-0000-4000-8000-000000000002', 1000, 'purchased', null, 'cs_v');
select public.consume_credits('11111111-0000-4000-8000-000000000001', 'api_call_premium', 4);
select public.consume_credits('11111111-0000-4000-8000-000000000001', 'api_call_premium', 2);
select public.consume_credits('11111111-0000-4000-8000-000000000001', 'ai_inference', 1);
select public.consume_credits('22222222-0000-4000-8000-000000000002', 'api_call_basic', 7);

-- ============================================================================
-- Service role: the inbox
-- ============================================================================

select tests.authenticate_as_service_role();
select is(
  public.record_stripe_event('evt_1', 'invoice.paid', now(), false, '{"id": "evt_1"}'),
  '{"status": "received", "duplicate": false, "attempts": 1}'::jsonb,
  'a first delivery is recorded as received');
select is(
  public.record_stripe_event('evt_1', 'invoice.paid', now(), false, '{"id": "evt_1"}') ->> 'duplicate',
  'true', 'a redelivery is recognised as a duplicate');
select is((select attempts from public.stripe_events where id = 'evt_1'), 2, 'and counted');
select lives_ok($$ select public.finish_stripe_event('evt_1', 'processed', '11111111-0000-4000-8000-000000000001') $$,
  'the event is marked processed');
select is(
  public.record_stripe_event('evt_1', 'invoice.paid', now(), false, '{"id": "evt_1"}') ->> 'status',
  'processed', 'a delivery after processing reports processed, so it is not applied again');
select lives_ok($$ select public.finish_stripe_event('evt_1', 'parked', null, 'late failure') $$,
  'finishing a processed event again is harmless');
select is((select status::text from public.stripe_events where id = 'evt_1'), 'processed', 'and it stays processed');

select is(
  public.record_stripe_event('evt_unhandled', 'customer.updated', now(), false, '{"id": "evt_unhandled"}', false),
  '{"status": "ignored", "duplicate": false, "attempts": 1}'::jsonb,
  'a type the webhook does not handle is stored as ignored in the same call');
select is(
  (select status::text || ':' || (processed_at is not null)::text from public.stripe_events where id = 'evt_unhandled'),
  'ignored:true', 'and is finished, with nothing left to apply');

select public.record_stripe_event('evt_2', 'customer.subscription.updated', now(), false, '{"id": "evt_2"}');
select throws_ok($$ select public.finish_stripe_event('evt_2', 'parked') $$, '22023', null,
  'a parked event needs its error');
select lives_ok($$ select public.finish_stripe_event('evt_2', 'parked', null, 'unknown price price_x') $$,
  'an event that will fail again is parked with its error');
select is(public.redrive_stripe_event('evt_2'), '{"id": "evt_2"}'::jsonb, 're-driving a parked event returns its payload');
select is((select status::text || ':' || coalesce(last_error, '') from public.stripe_events where id = 'evt_2'), 'received:',
  'and puts it back in line with its error cleared');
select throws_ok($$ select public.redrive_stripe_event('evt_2') $$, 'PT409', null, 'only a parked event can be re-driven');
select throws_ok($$ select public.redrive_stripe_event('evt_nope') $$, 'PT404', null, 'an unknown event cannot be re-driven');
select throws_ok($$ select public.record_stripe_event('not-an-event', 'x', now(), false, '{}') $$, '22023', null,
  'an id that is not a Stripe event id is refused with 22023');
reset role;

-- ============================================================================
-- Member and anon: the inbox is not theirs
-- ============================================================================

select tests.authenticate_as('una@inbox.test');
select throws_ok($$ select count(*) from public.stripe_events $$, '42501', null, 'members cannot read raw Stripe events');
select throws_ok($$ select public.record_stripe_event('evt_9', 'x', now(), false, '{}') $$, '42501', null,
  'members cannot record events');
reset role;
select tests.clear_authentication();
select throws_ok($$ select public.finish_stripe_event('evt_2', 'processed') $$, '42501', null, 'anon cannot touch the inbox');
reset role;

-- ============================================================================
-- Analytics
-- ============================================================================

select tests.authenticate_as('una@inbox.test');
select results_eq(
  $$ select event_key, events, quantity, credits from public.credit_usage_daily order by event_key $$,
  $$ values ('ai_inference'::text, 1, 1::bigint, 25::bigint), ('api_call_premium', 2, 6, 30) $$,
  'a member sees their organization''s usage per event and day, and no one else''s');
reset role;
select tests.clear_authentication();
select throws_ok($$ select * from public.credit_usage_daily $$, '42501', null, 'anon cannot read usage');
reset role;

select tests.authenticate_as_service_role();
select is(
  public.billing_overview(now() - interval '1 day', now() + interval '1 day') -> 'consumption_by_event',
  '[{"event_key": "api_call_premium", "events": 2, "credits": 30},
    {"event_key": "ai_inference", "events": 1, "credits": 25},
    {"event_key": "api_call_basic", "events": 1, "credits": 7}]'::jsonb,
  'the overview sums consumption by event across organizations');
select throws_ok($$ select public.billing_overview(now(), now() - interval '1 day') $$, '22023', null,
  'a period that ends before it starts is refused');
select is(public.detect_unusual_usage(5, 20), 1,
  'an organization using far more than its trailing average in the last hour is flagged');
select is(public.detect_unusual_usage(5, 20), 1, 'running the detector again in the same hour finds it again');
reset role;
select is((select count(*)::int from public.billing_alerts where kind = 'unusual_usage'), 1,
  'but raises one alert per organization per hour');

select * from finish();
rollback;
