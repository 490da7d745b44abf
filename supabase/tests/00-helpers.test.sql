-- Persona helpers for the pgTAP files, vendored so tests need no network. Unlike the other
-- files this one commits: it installs schema `tests`, which every later file uses.
--   tests.create_user(email) -> uuid        a row in auth.users
--   tests.authenticate_as(email)            act as that user through the API (role authenticated + JWT claims)
--   tests.authenticate_as_service_role()    act as the service role through the API
--   tests.clear_authentication()            act as an anonymous API caller (role anon)
--   tests.get_user_id(email) -> uuid
--   tests.add_lot(org, source, amount, expires_at) -> bigint
--                                           a lot with its grant ledger row, expiry unchecked (for expired lots)

create schema if not exists tests;
grant usage on schema tests to anon, authenticated, service_role;

create or replace function tests.create_user(p_email text) returns uuid
language sql
set search_path = ''
as $$
  insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
  values (gen_random_uuid(), 'authenticated', 'authenticated', p_email, '{}', '{}', now(), now())
  returning id;
$$;

create or replace function tests.get_user_id(p_email text) returns uuid
language sql stable
security definer
set search_path = ''
as $$
  select u.id from auth.users u where u.email = p_email;
$$;

create or replace function tests.authenticate_as(p_email text) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_user_id uuid := tests.get_user_id(p_email);
begin
  if v_user_id is null then
    raise exception 'no test user %', p_email;
  end if;
  perform set_config('role', 'authenticated', true);
  perform set_config('request.jwt.claims',
    json_build_object('sub', v_user_id, 'role', 'authenticated', 'email', p_email, 'aud', 'authenticated')::text, true);
end;
$$;

create or replace function tests.authenticate_as_service_role() returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('role', 'service_role', true);
  perform set_config('request.jwt.claims', '{"role": "service_role"}', true);
end;
$$;

create or replace function tests.clear_authentication() returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('role', 'anon', true);
  perform set_config('request.jwt.claims', '{"role": "anon"}', true);
end;
$$;

-- Test data with expiries in the past cannot come through grant_credits (which refuses
-- them), so this writes a lot and its grant row directly, as the table owner.
create or replace function tests.add_lot(
  p_organization_id uuid, p_source public.credit_source, p_amount integer, p_expires_at timestamptz
) returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lot_id bigint;
begin
  insert into public.credit_lots (organization_id, source, granted, remaining, expires_at)
  values (p_organization_id, p_source, p_amount, 0, p_expires_at)
  returning id into v_lot_id;
  perform private.move_credits(v_lot_id, p_amount, 'grant');
  return v_lot_id;
end;
$$;

grant execute on all functions in schema tests to anon, authenticated, service_role;

-- The runner sends a file as one query string, which Postgres runs as one implicit
-- transaction: without this commit the rollback below would undo the helpers too.
commit;

begin;
select plan(5);
select has_function('tests', 'create_user', array['text'], 'tests.create_user(email) exists');
select has_function('tests', 'authenticate_as', array['text'], 'tests.authenticate_as(email) exists');
select has_function('tests', 'authenticate_as_service_role', 'tests.authenticate_as_service_role() exists');
select has_function('tests', 'clear_authentication', 'tests.clear_authentication() exists');
select has_function('tests', 'add_lot', 'tests.add_lot(org, source, amount, expires_at) exists');
select * from finish();
rollback;
