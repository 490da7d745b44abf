-- organization_managers: a member learns who can change billing (the owners and admins, with
-- their emails, owners first); plain members are not listed; a stranger or a member of another
-- organization gets 42501; anon cannot execute it at all.

begin;
select plan(11);

select tests.create_user('dana@managers.test');    -- owner of M
select tests.create_user('abe@managers.test');     -- admin of M
select tests.create_user('ola@managers.test');     -- second owner of M
select tests.create_user('mo@managers.test');      -- member of M
select tests.create_user('sam@managers.test');     -- owner of N only (a stranger to M)

insert into public.organizations (id, name) values
  ('28000000-0000-4000-8000-00000000000a', 'Managers'),
  ('28000000-0000-4000-8000-00000000000b', 'Neighbours');
insert into public.organization_members (organization_id, user_id, role) values
  ('28000000-0000-4000-8000-00000000000a', tests.get_user_id('dana@managers.test'), 'owner'),
  ('28000000-0000-4000-8000-00000000000a', tests.get_user_id('abe@managers.test'), 'admin'),
  ('28000000-0000-4000-8000-00000000000a', tests.get_user_id('ola@managers.test'), 'owner'),
  ('28000000-0000-4000-8000-00000000000a', tests.get_user_id('mo@managers.test'), 'member'),
  ('28000000-0000-4000-8000-00000000000b', tests.get_user_id('sam@managers.test'), 'owner');

select tests.authenticate_as('mo@managers.test');
select results_eq(
  $$ select email, role from public.organization_managers('28000000-0000-4000-8000-00000000000a') $$,
  $$ values ('dana@managers.test', 'owner'), ('ola@managers.test', 'owner'), ('abe@managers.test', 'admin') $$,
  'a member reads the owners then the admins, each with their email'
);
select is(
  (select user_id from public.organization_managers('28000000-0000-4000-8000-00000000000a') where email = 'dana@managers.test'),
  tests.get_user_id('dana@managers.test'),
  'each manager comes with their user id'
);
select is(
  (select count(*)::int from public.organization_managers('28000000-0000-4000-8000-00000000000a') where email = 'mo@managers.test'),
  0,
  'plain members are not listed, not even the caller'
);
select throws_ok(
  $$ select * from public.organization_managers('28000000-0000-4000-8000-00000000000b') $$,
  '42501', null,
  'a member of one organization cannot list the managers of another'
);

select tests.authenticate_as('abe@managers.test');
select is(
  (select count(*)::int from public.organization_managers('28000000-0000-4000-8000-00000000000a')), 3,
  'an admin reads the same list'
);

select tests.authenticate_as('sam@managers.test');
select throws_ok(
  $$ select * from public.organization_managers('28000000-0000-4000-8000-00000000000a') $$,
  '42501', null,
  'a stranger (an owner elsewhere) gets 42501'
);
select throws_ok(
  $$ select * from public.organization_managers('28000000-0000-4000-8000-0000000000ff') $$,
  '42501', null,
  'an organization that does not exist is 42501 too (nothing to tell apart)'
);

select tests.clear_authentication();
select throws_ok(
  $$ select * from public.organization_managers('28000000-0000-4000-8000-00000000000a') $$,
  '42501', null,
  'anon cannot execute it'
);
reset role;
select ok(
  not has_function_privilege('anon', 'public.organization_managers(uuid)', 'execute'),
  'anon holds no execute privilege on it'
);

select tests.authenticate_as_service_role();
select is(
  (select count(*)::int from public.organization_managers('28000000-0000-4000-8000-00000000000a')), 3,
  'the service role reads it for any organization'
);
reset role;

select is(
  (select p.prosecdef and p.proconfig @> array['search_path=""']
     from pg_proc p where p.oid = 'public.organization_managers(uuid)'::regprocedure),
  true,
  'security definer with an empty search_path'
);

select * from finish();
rollback;
