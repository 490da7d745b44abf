-- The spend_limit alert resolves by itself once it no longer applies: the limit removed, or
-- raised above this month's usage. Lowering it, or raising it to no more than the usage, keeps
-- it open. Once resolved, reaching the new limit raises a new alert.

begin;
select plan(10);

select tests.create_user('owner@resolve-limit.test');
insert into public.organizations (id, name) values ('00000000-0000-4000-8000-0000000002d1', 'R');
insert into public.organization_members (organization_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000002d1', tests.get_user_id('owner@resolve-limit.test'), 'owner');
select public.grant_credits('00000000-0000-4000-8000-0000000002d1', 1000, 'purchased', null, 'cs_r');

/**
 * The organization's spend_limit alerts as "open" or "resolved:<reason>", in text order (one
 * transaction gives them all the same created_at, so there is no order of creation to read).
 */
create function pg_temp.limit_alerts() returns text
language sql
security definer
set search_path = ''
as $$
  select coalesce(string_agg(l.label, ',' order by l.label), '')
    from public.billing_alerts a
   cross join lateral (select case when a.resolved_at is null then 'open' else 'resolved:' || a.resolved_reason end as label) l
   where a.organization_id = '00000000-0000-4000-8000-0000000002d1' and a.kind = 'spend_limit';
$$;

select tests.authenticate_as('owner@resolve-limit.test');
select public.set_spend_limit('00000000-0000-4000-8000-0000000002d1', 100);
-- 4 AI inferences are 100 credits: the limit is reached exactly, so the alert is raised.
select public.consume_credits('00000000-0000-4000-8000-0000000002d1', 'ai_inference', 4);
select is(pg_temp.limit_alerts(), 'open', 'reaching the limit raises the alert');

select public.set_spend_limit('00000000-0000-4000-8000-0000000002d1', 90);
select is(pg_temp.limit_alerts(), 'open', 'a lower limit leaves it open: usage is still past it');
select public.set_spend_limit('00000000-0000-4000-8000-0000000002d1', 100);
select is(pg_temp.limit_alerts(), 'open', 'a limit equal to the usage leaves it open: nothing more can be spent');

select public.set_spend_limit('00000000-0000-4000-8000-0000000002d1', 200);
select is(pg_temp.limit_alerts(), 'resolved:limit_raised', 'a limit above the usage resolves it');
select is((select data ->> 'new_limit' from public.billing_alerts
            where organization_id = '00000000-0000-4000-8000-0000000002d1' and kind = 'spend_limit'),
  '200', 'the resolution records the new limit');

select public.consume_credits('00000000-0000-4000-8000-0000000002d1', 'ai_inference', 2);
select is(pg_temp.limit_alerts(), 'resolved:limit_raised', 'spending below the new limit raises nothing');
select public.consume_credits('00000000-0000-4000-8000-0000000002d1', 'ai_inference', 2);
select is(pg_temp.limit_alerts(), 'open,resolved:limit_raised', 'reaching the raised limit raises a new alert');

select public.set_spend_limit('00000000-0000-4000-8000-0000000002d1', null);
select is(pg_temp.limit_alerts(), 'resolved:limit_raised,resolved:limit_removed', 'removing the limit resolves it');

-- A dismissed alert stays dismissed: resolving never touches it.
select public.set_spend_limit('00000000-0000-4000-8000-0000000002d1', 300);
select public.consume_credits('00000000-0000-4000-8000-0000000002d1', 'ai_inference', 4);
select is(pg_temp.limit_alerts(), 'open,resolved:limit_raised,resolved:limit_removed',
  'a limit set again (300, with 200 used this month) alerts again when reached');
select public.dismiss_billing_alert((select id from public.billing_alerts
  where organization_id = '00000000-0000-4000-8000-0000000002d1' and kind = 'spend_limit' and resolved_at is null));
select public.set_spend_limit('00000000-0000-4000-8000-0000000002d1', null);
select is((select count(*)::int from public.billing_alerts
            where organization_id = '00000000-0000-4000-8000-0000000002d1' and kind = 'spend_limit'
              and dismissed_at is not null and resolved_at is not null),
  0, 'a dismissed alert is not resolved afterwards');

select * from finish();
rollback;
