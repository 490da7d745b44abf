-- Who a member can ask: the owners and admins of an organization, with their sign-in email.
-- Members cannot read auth.users (nor other members' emails), so the dashboard could only say
-- "ask an owner" without naming anyone; this function names them to the organization's own
-- members and to nobody else.

/**
 * The owners and admins of p_organization_id (owners first), with their email, for any member
 * of that organization (and the service role); 42501 for anyone else. Plain members are not
 * listed: their emails stay private to them.
 */
create function public.organization_managers(p_organization_id uuid)
returns table (user_id uuid, email text, role text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_organization_role(p_organization_id, 'member');
  return query
  select m.user_id, u.email::text, m.role::text
    from public.organization_members m
    join auth.users u on u.id = m.user_id
   where m.organization_id = p_organization_id
     and m.role in ('owner', 'admin')
   order by m.role, u.email;
end;
$$;
comment on function public.organization_managers(uuid) is
  'The owners and admins of an organization with their emails (owners first), for its members and the service role; 42501 otherwise.';
revoke all on function public.organization_managers(uuid) from public, anon;
grant execute on function public.organization_managers(uuid) to authenticated, service_role;
