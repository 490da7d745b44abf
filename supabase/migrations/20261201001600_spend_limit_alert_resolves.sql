-- The spend_limit alert ("usage reached the monthly limit, beyond it usage is refused") stops
-- being true when an owner removes the limit or raises it above this month's usage: it then
-- resolves by itself, as the other alerts do (20261201001200_alerts_resolve.sql). The month's
-- "limit reached" mark is cleared with it, so reaching the new limit alerts again.

/**
 * Trigger (after organizations.monthly_spend_limit changes): resolves the organization's open
 * spend_limit alerts when the limit is gone ('limit_removed') or now above this month's usage
 * plus live reservations ('limit_raised'). An alert exists only once the month's counter row
 * does (note_spend_limit_reached writes it), so the usage read here is the month's.
 */
create function private.resolve_spend_limit_alerts_on_limit_change() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_reason text;
  v_resolved integer;
begin
  if new.monthly_spend_limit is null then
    v_reason := 'limit_removed';
  elsif new.monthly_spend_limit > private.spend_limit_usage(new.id) then
    v_reason := 'limit_raised';
  else
    return null;
  end if;
  v_resolved := private.resolve_alerts(new.id, 'spend_limit', null, v_reason, 'spend_limit:',
    jsonb_build_object('new_limit', new.monthly_spend_limit));
  if v_resolved > 0 then
    update public.credit_spend_months m
       set limit_reached_at = null, updated_at = now()
     where m.organization_id = new.id and m.month_start = private.utc_month_start()
       and m.limit_reached_at is not null;
  end if;
  return null;
end;
$$;
revoke all on function private.resolve_spend_limit_alerts_on_limit_change() from public;

create trigger organizations_resolve_spend_limit_alerts
  after update of monthly_spend_limit on public.organizations
  for each row when (new.monthly_spend_limit is distinct from old.monthly_spend_limit)
  execute function private.resolve_spend_limit_alerts_on_limit_change();
