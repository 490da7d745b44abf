-- Tenancy: creating organizations, managing their members and settings, and who can see
-- which organization. Ids created by a persona are kept in transaction-local settings
-- (`t.*`) so every persona can read them.

begin;
select plan(82);

select tests.create_user('owner@tenancy.test');
select tests.create_user('admin@tenancy.test');
select tests.create_user('member@tenancy.test');
select tests.create_user('member2@tenancy.test');
select tests.create_user('newbie@tenancy.test');
select tests.create_user('stranger@tenancy.test');

-- ============================================================================
-- Owner
-- ============================================================================

select tests.authenticate_as('owner@tenancy.test');
select set_config('t.org', public.create_organization('  Acme  ')::text, true);

select is(
  (select m.role::text from public.organization_members m
    where m.organization_id = current_setting('t.org')::uuid and m.user_id = tests.get_user_id('owner@tenancy.test')),
  'owner',
  'the signed-in user who creates an organization becomes its owner'
);
select is(
  (select o.name from public.organizations o where o.id = current_setting('t.org')::uuid),
  'Acme',
  'an organization''s name is stored without surrounding blanks'
);
select is(
  (select o.credit_precedence::text from public.organizations o where o.id = current_setting('t.org')::uuid),
  'purchased_first',
  'a new organization spends purchased credits first by default'
);

select throws_ok($$ select public.create_organization('') $$, '22023', null,
  'an empty organization name is rejected');
select throws_ok($$ select public.create_organization('   ') $$, '22023', null,
  'a blank organization name is rejected');
select throws_ok($$ select public.create_organization(repeat('x', 201)) $$, '22023', null,
  'an organization name longer than 200 characters is rejected');
select throws_ok($$ select public.create_organization(E'Ac\nme') $$, '22023', null,
  'an organization name with control characters is rejected');
select throws_ok($$ select public.create_organization(null) $$, '22023', null,
  'a null organization name is rejected');

select lives_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('admin@tenancy.test'), 'admin') $$,
  'an owner can add an admin'
);
select lives_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('member@tenancy.test')) $$,
  'an owner can add a member with the default role'
);
select lives_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('member2@tenancy.test'), 'member') $$,
  'an owner can add a second member'
);
select is(
  (select m.role::text from public.organization_members m
    where m.organization_id = current_setting('t.org')::uuid and m.user_id = tests.get_user_id('member@tenancy.test')),
  'member',
  'a member added without a role gets the member role'
);
select is(
  (select count(*)::integer from public.organization_members m where m.organization_id = current_setting('t.org')::uuid),
  4,
  'the owner sees all four memberships of their organization'
);

select lives_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('member@tenancy.test'), 'member') $$,
  'adding an existing member again with the same role succeeds'
);
select is(
  (select count(*)::integer from public.organization_members m where m.organization_id = current_setting('t.org')::uuid),
  4,
  'adding an existing member again with the same role adds no membership'
);
select throws_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('member@tenancy.test'), 'admin') $$,
  '23505', null,
  'adding an existing member again with another role is a conflict'
);
select throws_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('newbie@tenancy.test'), 'superuser') $$,
  '22023', null,
  'adding a member with an unknown role is rejected'
);
select throws_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('newbie@tenancy.test'), null) $$,
  '22023', null,
  'adding a member with a null role is rejected'
);
select throws_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, gen_random_uuid(), 'member') $$,
  'PT404', null,
  'adding a user that does not exist is not found'
);

select lives_ok(
  $$ select public.set_credit_precedence(current_setting('t.org')::uuid, 'expiring_first') $$,
  'an owner can switch the organization to expiring_first'
);
select is(
  (select o.credit_precedence::text from public.organizations o where o.id = current_setting('t.org')::uuid),
  'expiring_first',
  'the organization''s precedence is stored'
);
select lives_ok(
  $$ select public.set_low_balance_threshold(current_setting('t.org')::uuid, 50) $$,
  'an owner can set the low-balance threshold'
);
select is(
  (select o.low_balance_threshold from public.organizations o where o.id = current_setting('t.org')::uuid),
  50,
  'the low-balance threshold is stored'
);
select throws_ok($$ select public.set_credit_precedence(current_setting('t.org')::uuid, 'newest_first') $$, '22023', null,
  'an unknown precedence is rejected');
select throws_ok($$ select public.set_credit_precedence(current_setting('t.org')::uuid, null) $$, '22023', null,
  'a null precedence is rejected');
select throws_ok($$ select public.set_low_balance_threshold(current_setting('t.org')::uuid, -1) $$, '22023', null,
  'a negative low-balance threshold is rejected');
select throws_ok($$ select public.set_low_balance_threshold(current_setting('t.org')::uuid, null) $$, '22023', null,
  'a null low-balance threshold is rejected');

select throws_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('owner@tenancy.test'), 'admin') $$,
  'PT409', null,
  'the last owner cannot demote themselves'
);
select throws_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('owner@tenancy.test')) $$,
  'PT409', null,
  'the last owner cannot leave the organization'
);
select throws_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('member@tenancy.test'), 'boss') $$,
  '22023', null,
  'changing a member to an unknown role is rejected'
);
select throws_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('stranger@tenancy.test'), 'admin') $$,
  'PT404', null,
  'changing the role of someone who is not a member is not found'
);

-- ============================================================================
-- Admin
-- ============================================================================

select tests.authenticate_as('admin@tenancy.test');

select is(
  (select count(*)::integer from public.organizations o where o.id = current_setting('t.org')::uuid),
  1,
  'an admin can read their organization'
);
select throws_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('newbie@tenancy.test'), 'member') $$,
  '42501', null,
  'an admin cannot add members (owners only)'
);
select lives_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('member2@tenancy.test'), 'admin') $$,
  'an admin can promote a member to admin'
);
select lives_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('member2@tenancy.test'), 'member') $$,
  'an admin can demote an admin to member'
);
select is(
  (select m.role::text from public.organization_members m
    where m.organization_id = current_setting('t.org')::uuid and m.user_id = tests.get_user_id('member2@tenancy.test')),
  'member',
  'the role an admin set is stored'
);
select throws_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('member2@tenancy.test'), 'owner') $$,
  '42501', null,
  'an admin cannot grant the owner role'
);
select throws_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('admin@tenancy.test'), 'owner') $$,
  '42501', null,
  'an admin cannot promote themselves to owner'
);
select throws_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('owner@tenancy.test'), 'member') $$,
  '42501', null,
  'an admin cannot demote an owner'
);
select throws_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('owner@tenancy.test')) $$,
  '42501', null,
  'an admin cannot remove an owner'
);
select lives_ok(
  $$ select public.set_credit_precedence(current_setting('t.org')::uuid, 'purchased_first') $$,
  'an admin can change the credit precedence'
);
select lives_ok(
  $$ select public.set_low_balance_threshold(current_setting('t.org')::uuid, 0) $$,
  'an admin can change the low-balance threshold'
);
select lives_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('member2@tenancy.test')) $$,
  'an admin can remove a member'
);
select is(
  (select count(*)::integer from public.organization_members m
    where m.organization_id = current_setting('t.org')::uuid and m.user_id = tests.get_user_id('member2@tenancy.test')),
  0,
  'a removed member no longer has a membership'
);

-- ============================================================================
-- Member
-- ============================================================================

select tests.authenticate_as('member@tenancy.test');

select results_eq(
  $$ select o.id from public.organizations o $$,
  $$ values (current_setting('t.org')::uuid) $$,
  'a member sees their organization and no other'
);
select is(
  (select count(*)::integer from public.organization_members m),
  3,
  'a member sees every membership of their organization (owner, admin, themselves)'
);
select throws_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('newbie@tenancy.test'), 'member') $$,
  '42501', null,
  'a member cannot add members'
);
select throws_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('member@tenancy.test'), 'admin') $$,
  '42501', null,
  'a member cannot promote themselves'
);
select throws_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('admin@tenancy.test'), 'member') $$,
  '42501', null,
  'a member cannot change another member''s role'
);
select throws_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('admin@tenancy.test')) $$,
  '42501', null,
  'a member cannot remove another member'
);
select throws_ok(
  $$ select public.set_credit_precedence(current_setting('t.org')::uuid, 'expiring_first') $$,
  '42501', null,
  'a member cannot change the credit precedence'
);
select throws_ok(
  $$ select public.set_low_balance_threshold(current_setting('t.org')::uuid, 10) $$,
  '42501', null,
  'a member cannot change the low-balance threshold'
);
select lives_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('member@tenancy.test')) $$,
  'a member can leave the organization'
);
select is_empty(
  $$ select o.id from public.organizations o $$,
  'a member who left no longer sees the organization'
);

-- ============================================================================
-- Stranger
-- ============================================================================

select tests.authenticate_as('stranger@tenancy.test');

select is_empty($$ select o.id from public.organizations o $$,
  'a stranger sees no organization');
select is_empty($$ select m.user_id from public.organization_members m $$,
  'a stranger sees no membership');
select throws_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('stranger@tenancy.test'), 'owner') $$,
  '42501', null,
  'a stranger cannot add themselves to an organization'
);
select throws_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('admin@tenancy.test'), 'member') $$,
  '42501', null,
  'a stranger cannot change a member''s role'
);
select throws_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('admin@tenancy.test')) $$,
  '42501', null,
  'a stranger cannot remove a member'
);
select throws_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('stranger@tenancy.test')) $$,
  '42501', null,
  'a stranger cannot "leave" an organization they do not belong to'
);
select throws_ok(
  $$ select public.set_credit_precedence(current_setting('t.org')::uuid, 'expiring_first') $$,
  '42501', null,
  'a stranger cannot change the credit precedence'
);
select throws_ok(
  $$ select public.set_low_balance_threshold(current_setting('t.org')::uuid, 10) $$,
  '42501', null,
  'a stranger cannot change the low-balance threshold'
);
select throws_ok(
  $$ select public.set_credit_precedence(gen_random_uuid(), 'expiring_first') $$,
  '42501', null,
  'an organization that does not exist looks the same as a foreign one to a stranger'
);

-- ============================================================================
-- Anon
-- ============================================================================

select tests.clear_authentication();

select throws_ok($$ select public.create_organization('Anon Inc') $$, '42501', null,
  'anon cannot create an organization');
select throws_ok($$ select count(*) from public.organizations $$, '42501', null,
  'anon cannot read organizations at all');
select throws_ok($$ select count(*) from public.organization_members $$, '42501', null,
  'anon cannot read memberships at all');
select throws_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('newbie@tenancy.test'), 'member') $$,
  '42501', null,
  'anon cannot add members'
);
select throws_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('admin@tenancy.test')) $$,
  '42501', null,
  'anon cannot remove members'
);
select throws_ok(
  $$ select public.set_credit_precedence(current_setting('t.org')::uuid, 'expiring_first') $$,
  '42501', null,
  'anon cannot change the credit precedence'
);

-- A JWT whose user does not exist (deleted, or forged with the right secret) is not a user.
select set_config('role', 'authenticated', true);
select set_config('request.jwt.claims', json_build_object('sub', gen_random_uuid(), 'role', 'authenticated')::text, true);
select throws_ok($$ select public.create_organization('Ghost Inc') $$, '42501', null,
  'a token for a user that does not exist cannot create an organization');

-- ============================================================================
-- Service role
-- ============================================================================

select tests.authenticate_as_service_role();

select throws_ok($$ select public.create_organization('Service Inc') $$, '42501', null,
  'the service role cannot create an organization: there is no user to own it');
select lives_ok(
  $$ select public.add_organization_member(current_setting('t.org')::uuid, tests.get_user_id('newbie@tenancy.test'), 'owner') $$,
  'the service role can add an owner'
);
select lives_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('newbie@tenancy.test'), 'member') $$,
  'the service role can demote an owner while another owner remains'
);
select throws_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('owner@tenancy.test'), 'member') $$,
  'PT409', null,
  'not even the service role can demote the last owner'
);
select throws_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('owner@tenancy.test')) $$,
  'PT409', null,
  'not even the service role can remove the last owner'
);
select throws_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('stranger@tenancy.test')) $$,
  'PT404', null,
  'removing someone who is not a member is not found'
);
select throws_ok(
  $$ select public.add_organization_member(gen_random_uuid(), tests.get_user_id('newbie@tenancy.test'), 'member') $$,
  'PT404', null,
  'adding a member to an organization that does not exist is not found'
);
select throws_ok($$ select public.set_credit_precedence(gen_random_uuid(), 'expiring_first') $$, 'PT404', null,
  'setting the precedence of an organization that does not exist is not found');
select throws_ok($$ select public.set_low_balance_threshold(gen_random_uuid(), 10) $$, 'PT404', null,
  'setting the threshold of an organization that does not exist is not found');

-- ============================================================================
-- Owner, once another owner exists
-- ============================================================================

select tests.authenticate_as('owner@tenancy.test');

select lives_ok(
  $$ select public.update_organization_member_role(current_setting('t.org')::uuid, tests.get_user_id('admin@tenancy.test'), 'owner') $$,
  'an owner can grant the owner role'
);
select lives_ok(
  $$ select public.remove_organization_member(current_setting('t.org')::uuid, tests.get_user_id('owner@tenancy.test')) $$,
  'an owner can leave once another owner remains'
);

reset role;
select results_eq(
  $$ select u.email::text, m.role::text
       from public.organization_members m join auth.users u on u.id = m.user_id
      where m.organization_id = current_setting('t.org')::uuid
      order by 1 $$,
  $$ values ('admin@tenancy.test', 'owner'), ('newbie@tenancy.test', 'member') $$,
  'after all the changes the organization keeps exactly the expected members and roles'
);

select * from finish();
rollback;
