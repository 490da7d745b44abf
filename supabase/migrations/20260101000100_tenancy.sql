-- Tenancy: organizations are the billing tenants. Every billing row belongs to one
-- organization, and users reach those rows only through their membership, checked by the
-- helpers in this file (every RLS policy and every billing function goes through them).

-- ============================================================================
-- Schema for internal helpers (not exposed over the REST API)
-- ============================================================================

create schema if not exists private;
comment on schema private is 'Internal billing helpers. Not exposed over the API; never granted to anon.';
revoke all on schema private from public;
-- Signed-in users need the schema only for the membership helper their RLS policies call;
-- every other helper runs inside a security definer function, as its owner.
grant usage on schema private to authenticated, service_role;

-- ============================================================================
-- Types
-- ============================================================================

-- Declared from most to least privileged, so `role <= 'admin'` reads "admin or higher".
create type public.organization_role as enum ('owner', 'admin', 'member');
comment on type public.organization_role is 'Membership role. Ordered from most to least privileged.';

create type public.credit_precedence as enum ('purchased_first', 'expiring_first');
comment on type public.credit_precedence is
  'Which credits consume_credits spends first: purchased (never expire) or those expiring soonest.';

-- ============================================================================
-- Tables
-- ============================================================================

create table public.organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null check (char_length(name) between 1 and 200),
  stripe_customer_id text unique,
  credit_precedence public.credit_precedence not null default 'purchased_first',
  low_balance_threshold integer not null default 0 check (low_balance_threshold >= 0),
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.organizations enable row level security;

comment on table public.organizations is 'A billing tenant: owns subscriptions, credits and history.';
comment on column public.organizations.stripe_customer_id is
  'Stripe Customer (cus_...) that pays for this organization. Set once, by the server, never from a request.';
comment on column public.organizations.credit_precedence is
  'purchased_first (default): purchased credits, then subscription credits oldest expiry first. expiring_first: credits that expire soonest first.';
comment on column public.organizations.low_balance_threshold is
  'Total spendable credits below which the organization is alerted. 0 disables the alert.';

create table public.organization_members (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role public.organization_role not null default 'member',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (organization_id, user_id)
);
alter table public.organization_members enable row level security;

comment on table public.organization_members is
  'Who belongs to which organization. Written only through the membership functions.';

-- ============================================================================
-- Indexes
-- ============================================================================

-- The primary key covers lookups by organization; policies look up by user.
create index organization_members_user_id_idx on public.organization_members (user_id, organization_id);
create index organizations_created_by_idx on public.organizations (created_by);

-- ============================================================================
-- Helpers
-- ============================================================================

/**
 * Keeps updated_at honest on every update, whoever writes the row.
 */
create function private.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
revoke all on function private.touch_updated_at() from public;

create trigger organizations_touch_updated_at before update on public.organizations
  for each row execute function private.touch_updated_at();
create trigger organization_members_touch_updated_at before update on public.organization_members
  for each row execute function private.touch_updated_at();

/**
 * True when the caller acts for the platform rather than for a user: the service role
 * (through the API) or a trusted direct database login (the migration owner, a superuser).
 * Decided from the role the session switched to (PostgREST's `set role`), or the login role
 * when it did not switch, never from a JWT claim alone.
 */
create function private.caller_is_service() returns boolean
language plpgsql
stable
set search_path = ''
as $$
declare
  v_role text := pg_catalog.current_setting('role');
begin
  -- Fast paths for the API roles, which always arrive through `set role` (this runs on
  -- every consume_credits call).
  if v_role = 'service_role' then
    return true;
  elsif v_role in ('authenticated', 'anon') then
    return false;
  end if;
  return coalesce(
    (select r.rolbypassrls or r.rolsuper
       from pg_catalog.pg_roles r
      where r.rolname = case when v_role = 'none' then session_user::text else v_role end),
    false);
end;
$$;
revoke all on function private.caller_is_service() from public;

/**
 * Raises 42501 unless the caller is the service role (or a trusted database login).
 */
create function private.require_service() returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if not private.caller_is_service() then
    raise exception 'only the service role may call this function' using errcode = '42501';
  end if;
end;
$$;
revoke all on function private.require_service() from public;

/**
 * The organizations the signed-in user belongs to. The one membership helper every RLS
 * policy uses, as `organization_id in (select private.current_user_organization_ids())`,
 * so Postgres evaluates it once per statement rather than once per row.
 */
create function private.current_user_organization_ids() returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select m.organization_id
    from public.organization_members m
   where m.user_id = (select auth.uid());
$$;
revoke all on function private.current_user_organization_ids() from public;
grant execute on function private.current_user_organization_ids() to authenticated, service_role;

/**
 * Raises 42501 unless the caller is the service role or a member of the organization with
 * at least `p_min_role`. Returns the caller's role (null for the service role).
 * Unknown organizations get the same error as foreign ones, so existence does not leak.
 */
create function private.require_organization_role(
  p_organization_id uuid,
  p_min_role public.organization_role default 'member'
) returns public.organization_role
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_role public.organization_role;
begin
  if private.caller_is_service() then
    return null;
  end if;
  select m.role into v_role
    from public.organization_members m
   where m.organization_id = p_organization_id
     and m.user_id = auth.uid();
  if v_role is null or v_role > p_min_role then
    raise exception 'not allowed: requires the % role in this organization', p_min_role
      using errcode = '42501';
  end if;
  return v_role;
end;
$$;
revoke all on function private.require_organization_role(uuid, public.organization_role) from public;

/**
 * Parses a role name given as text by an API caller; 22023 for anything else.
 */
create function private.parse_organization_role(p_role text) returns public.organization_role
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_role is null or p_role not in ('owner', 'admin', 'member') then
    raise exception 'invalid role %: expected owner, admin or member', coalesce(p_role, 'null')
      using errcode = '22023';
  end if;
  return p_role::public.organization_role;
end;
$$;
revoke all on function private.parse_organization_role(text) from public;

-- ============================================================================
-- RLS policies
-- ============================================================================

create policy "Members can read their organizations"
  on public.organizations for select to authenticated
  using (id in (select private.current_user_organization_ids()));

create policy "Members can read their organizations' memberships"
  on public.organization_members for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

-- Writes go through the functions below; the API roles get no direct write access at all.
revoke insert, update, delete, truncate on public.organizations from anon, authenticated;
revoke insert, update, delete, truncate on public.organization_members from anon, authenticated;
revoke all on public.organizations, public.organization_members from anon;

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * Creates an organization owned by the signed-in caller and returns its id.
 */
create function public.create_organization(p_name text) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid := auth.uid();
  v_name text := btrim(p_name);
  v_organization_id uuid;
begin
  if v_user_id is null or not exists (select 1 from auth.users u where u.id = v_user_id) then
    raise exception 'a signed-in user is required to create an organization' using errcode = '42501';
  end if;
  if v_name is null or char_length(v_name) not between 1 and 200 or v_name ~ '[[:cntrl:]]' then
    raise exception 'organization name must be 1 to 200 printable characters' using errcode = '22023';
  end if;

  insert into public.organizations (name, created_by)
  values (v_name, v_user_id)
  returning id into v_organization_id;

  insert into public.organization_members (organization_id, user_id, role)
  values (v_organization_id, v_user_id, 'owner');

  return v_organization_id;
end;
$$;
comment on function public.create_organization(text) is
  'Creates an organization; the signed-in caller becomes its owner. 42501 without a user, 22023 for a bad name.';
revoke all on function public.create_organization(text) from public, anon;
grant execute on function public.create_organization(text) to authenticated, service_role;

/**
 * Adds a user to an organization. Owners (and the service role) only. Adding an existing
 * member again with the same role changes nothing; with another role it is a conflict
 * (use update_organization_member_role).
 */
create function public.add_organization_member(
  p_organization_id uuid,
  p_user_id uuid,
  p_role text default 'member'
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_role public.organization_role := private.parse_organization_role(p_role);
  v_existing public.organization_role;
begin
  perform private.require_organization_role(p_organization_id, 'owner');
  if not exists (select 1 from public.organizations o where o.id = p_organization_id) then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
  if p_user_id is null or not exists (select 1 from auth.users u where u.id = p_user_id) then
    raise exception 'user not found' using errcode = 'PT404';
  end if;

  select m.role into v_existing
    from public.organization_members m
   where m.organization_id = p_organization_id and m.user_id = p_user_id;
  if v_existing = v_role then
    return;
  elsif v_existing is not null then
    raise exception 'user is already a member with the % role', v_existing
      using errcode = '23505', hint = 'Use update_organization_member_role to change a role.';
  end if;

  insert into public.organization_members (organization_id, user_id, role)
  values (p_organization_id, p_user_id, v_role);
end;
$$;
comment on function public.add_organization_member(uuid, uuid, text) is
  'Adds a member (owners and the service role). Roles: owner, admin, member.';
revoke all on function public.add_organization_member(uuid, uuid, text) from public, anon;
grant execute on function public.add_organization_member(uuid, uuid, text) to authenticated, service_role;

/**
 * Raises unless the caller may change or remove `p_target_role` members: owners may touch
 * anyone, admins only admins and members, and only owners may hand out the owner role.
 */
create function private.require_member_management(
  p_organization_id uuid,
  p_target_role public.organization_role,
  p_new_role public.organization_role
) returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_caller_role public.organization_role;
begin
  v_caller_role := private.require_organization_role(p_organization_id, 'admin');
  if v_caller_role = 'admin' and ('owner' in (p_target_role, p_new_role)) then
    raise exception 'only owners can change owners or grant the owner role' using errcode = '42501';
  end if;
end;
$$;
revoke all on function private.require_member_management(uuid, public.organization_role, public.organization_role) from public;

/**
 * Locks the organization's memberships and raises PT409 if removing or demoting
 * `p_user_id` would leave the organization without an owner.
 */
create function private.require_another_owner(p_organization_id uuid, p_user_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Lock the owners so two concurrent demotions cannot each see the other as remaining.
  perform 1 from public.organization_members m
   where m.organization_id = p_organization_id and m.role = 'owner'
   for update;
  if not exists (
    select 1 from public.organization_members m
     where m.organization_id = p_organization_id and m.role = 'owner' and m.user_id <> p_user_id
  ) then
    raise exception 'an organization must keep at least one owner' using errcode = 'PT409';
  end if;
end;
$$;
revoke all on function private.require_another_owner(uuid, uuid) from public;

/**
 * Changes a member's role. Owners and admins; see require_member_management for who may
 * change whom. The last owner cannot be demoted.
 */
create function public.update_organization_member_role(
  p_organization_id uuid,
  p_user_id uuid,
  p_role text
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_new_role public.organization_role := private.parse_organization_role(p_role);
  v_current public.organization_role;
begin
  perform private.require_organization_role(p_organization_id, 'admin');
  select m.role into v_current
    from public.organization_members m
   where m.organization_id = p_organization_id and m.user_id = p_user_id;
  if v_current is null then
    raise exception 'user is not a member of this organization' using errcode = 'PT404';
  end if;
  perform private.require_member_management(p_organization_id, v_current, v_new_role);
  if v_current = 'owner' and v_new_role <> 'owner' then
    perform private.require_another_owner(p_organization_id, p_user_id);
  end if;

  update public.organization_members m
     set role = v_new_role
   where m.organization_id = p_organization_id and m.user_id = p_user_id
     and m.role is distinct from v_new_role;
end;
$$;
comment on function public.update_organization_member_role(uuid, uuid, text) is
  'Changes a member''s role (owners; admins for non-owners). The last owner cannot be demoted (PT409).';
revoke all on function public.update_organization_member_role(uuid, uuid, text) from public, anon;
grant execute on function public.update_organization_member_role(uuid, uuid, text) to authenticated, service_role;

/**
 * Removes a member. Owners and admins (admins not owners); any member may remove themselves.
 * The last owner cannot leave.
 */
create function public.remove_organization_member(p_organization_id uuid, p_user_id uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_current public.organization_role;
begin
  if p_user_id is distinct from auth.uid() or private.caller_is_service() then
    perform private.require_organization_role(p_organization_id, 'admin');
  else
    perform private.require_organization_role(p_organization_id, 'member');
  end if;
  select m.role into v_current
    from public.organization_members m
   where m.organization_id = p_organization_id and m.user_id = p_user_id;
  if v_current is null then
    raise exception 'user is not a member of this organization' using errcode = 'PT404';
  end if;
  if p_user_id is distinct from auth.uid() then
    perform private.require_member_management(p_organization_id, v_current, v_current);
  end if;
  if v_current = 'owner' then
    perform private.require_another_owner(p_organization_id, p_user_id);
  end if;

  delete from public.organization_members m
   where m.organization_id = p_organization_id and m.user_id = p_user_id;
end;
$$;
comment on function public.remove_organization_member(uuid, uuid) is
  'Removes a member (owners; admins for non-owners; anyone for themselves). The last owner cannot leave (PT409).';
revoke all on function public.remove_organization_member(uuid, uuid) from public, anon;
grant execute on function public.remove_organization_member(uuid, uuid) to authenticated, service_role;

/**
 * Sets which credits consume_credits spends first. Owners and admins.
 */
create function public.set_credit_precedence(p_organization_id uuid, p_policy text) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_organization_role(p_organization_id, 'admin');
  if p_policy is null or p_policy not in ('purchased_first', 'expiring_first') then
    raise exception 'invalid credit precedence %: expected purchased_first or expiring_first',
      coalesce(p_policy, 'null') using errcode = '22023';
  end if;
  update public.organizations o
     set credit_precedence = p_policy::public.credit_precedence
   where o.id = p_organization_id;
  if not found then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
end;
$$;
comment on function public.set_credit_precedence(uuid, text) is
  'Switches between purchased_first (default) and expiring_first. Owners and admins.';
revoke all on function public.set_credit_precedence(uuid, text) from public, anon;
grant execute on function public.set_credit_precedence(uuid, text) to authenticated, service_role;

/**
 * Sets the balance below which the organization is alerted. Owners and admins; 0 disables.
 */
create function public.set_low_balance_threshold(p_organization_id uuid, p_threshold integer) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_organization_role(p_organization_id, 'admin');
  if p_threshold is null or p_threshold < 0 then
    raise exception 'low balance threshold must be zero or a positive integer' using errcode = '22023';
  end if;
  update public.organizations o
     set low_balance_threshold = p_threshold
   where o.id = p_organization_id;
  if not found then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;
end;
$$;
comment on function public.set_low_balance_threshold(uuid, integer) is
  'Sets the low-balance alert threshold in credits (0 disables). Owners and admins.';
revoke all on function public.set_low_balance_threshold(uuid, integer) from public, anon;
grant execute on function public.set_low_balance_threshold(uuid, integer) to authenticated, service_role;
