-- Retries that arrive after the world moved on still replay, and the ledger names only the
-- people who acted.

begin;
select plan(8);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('olive@replay.test');  -- owner
select tests.create_user('max@replay.test');    -- member

insert into public.organizations (id, name) values ('cccccccc-0000-4000-8000-00000000000c', 'Replays');
insert into public.organization_members (organization_id, user_id, role) values
  ('cccccccc-0000-4000-8000-00000000000c', tests.get_user_id('olive@replay.test'), 'owner'),
  ('cccccccc-0000-4000-8000-00000000000c', tests.get_user_id('max@replay.test'), 'member');
insert into public.credit_events (event_key, name, credit_cost) values ('soon_retired', 'Soon retired', 2);

select public.grant_credits('cccccccc-0000-4000-8000-00000000000c', 100, 'purchased', null, 'cs_replay');

-- ============================================================================
-- Service role: replays after the event was retired
-- ============================================================================

select tests.authenticate_as_service_role();
select set_config('t.first', public.consume_credits('cccccccc-0000-4000-8000-00000000000c', 'soon_retired', 3, 'job-7')::text, true);
reset role;
update public.credit_events set is_active = false where event_key = 'soon_retired';
select tests.authenticate_as_service_role();

select is(
  public.consume_credits('cccccccc-0000-4000-8000-00000000000c', 'soon_retired', 3, 'job-7') - 'idempotent_replay',
  current_setting('t.first')::jsonb - 'idempotent_replay',
  'a retry after its event was deactivated returns the first result rather than PT404'
);
select throws_ok(
  $$ select public.consume_credits('cccccccc-0000-4000-8000-00000000000c', 'soon_retired', 3, 'job-8') $$,
  'PT404', null,
  'a new call for the deactivated event is refused with PT404'
);
reset role;

-- ============================================================================
-- Service role: a grant replayed after its expiry passed
-- ============================================================================

-- A subscription grant made earlier, whose expiry has since passed: written as the table
-- owner, since time cannot pass inside one transaction.
insert into public.credit_lots (organization_id, source, granted, remaining, expires_at, reference)
values ('cccccccc-0000-4000-8000-00000000000c', 'subscription', 40, 0, '2026-01-01T00:00:00Z', 'in_old');
select private.move_credits(
  (select id from public.credit_lots where reference = 'in_old'), 40, 'grant', p_reference => 'in_old');

select tests.authenticate_as_service_role();
select is(
  (public.grant_credits('cccccccc-0000-4000-8000-00000000000c', 40, 'subscription', '2026-01-01T00:00:00Z', 'in_old')
    ->> 'idempotent_replay')::boolean,
  true,
  'replaying a subscription grant whose expiry has passed replays instead of failing validation'
);
select throws_ok(
  $$ select public.grant_credits('cccccccc-0000-4000-8000-00000000000c', 40, 'subscription', '2026-01-01T00:00:00Z', 'in_new') $$,
  '22023', null,
  'a new subscription grant with an expiry in the past is refused with 22023'
);
reset role;

-- ============================================================================
-- Member: the ledger names who acted
-- ============================================================================

select tests.authenticate_as('max@replay.test');
select public.consume_credits('cccccccc-0000-4000-8000-00000000000c', 'api_call_basic', 1);
reset role;

select is(
  (select actor_id from public.credit_transactions
    where organization_id = 'cccccccc-0000-4000-8000-00000000000c' and kind = 'consumption'
    order by id desc limit 1),
  tests.get_user_id('max@replay.test'),
  'a member''s consumption row records that member as the actor'
);
select is(
  (select count(*)::int from public.credit_transactions
    where organization_id = 'cccccccc-0000-4000-8000-00000000000c' and kind = 'expiry' and reference is null
      and lot_id = (select id from public.credit_lots where reference = 'in_old')),
  1,
  'the member''s call expired the overdue lot on its way'
);
select is(
  (select actor_id from public.credit_transactions
    where organization_id = 'cccccccc-0000-4000-8000-00000000000c' and kind = 'expiry'),
  null,
  'an expiry row names no actor, even when a member''s call wrote it'
);

select tests.authenticate_as('max@replay.test');
select is(
  (public.get_credit_balance('cccccccc-0000-4000-8000-00000000000c') ->> 'total')::int,
  93,
  'a member reads the balance through get_credit_balance: 100 - 6 - 1'
);
reset role;

select * from finish();
rollback;
