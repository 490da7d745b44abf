-- Analytics: usage per organization and event per day for the dashboard (through RLS), an
-- overview of the whole business for the service role, and the unusual-usage detector a
-- scheduled job runs.

-- ============================================================================
-- Indexes
-- ============================================================================

-- Period scans across organizations (overview, unusual usage). BRIN: consumptions arrive in
-- time order and are never updated, so the index stays tiny and costs consume_credits little.
create index credit_consumptions_created_at_brin on public.credit_consumptions using brin (created_at);

-- ============================================================================
-- Views
-- ============================================================================

-- security_invoker: the caller's RLS on credit_consumptions applies, so members see only
-- their organizations' usage.
create view public.credit_usage_daily
with (security_invoker = true)
as
select c.organization_id,
       (c.created_at at time zone 'utc')::date as day,
       c.event_key,
       count(*)::integer as events,
       sum(c.quantity)::bigint as quantity,
       sum(c.credits)::bigint as credits
  from public.credit_consumptions c
 group by c.organization_id, (c.created_at at time zone 'utc')::date, c.event_key;

comment on view public.credit_usage_daily is 'Credits consumed per organization, UTC day and event. Members see their organizations.';

revoke all on public.credit_usage_daily from anon;
revoke insert, update, delete, truncate on public.credit_usage_daily from authenticated, service_role;

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * The business at a glance between p_from and p_to, for the service role: subscriptions by
 * state (active, trialing, past due now; churned in the period), payment success rate, and
 * credit consumption by event.
 */
create function public.billing_overview(p_from timestamptz, p_to timestamptz) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  if p_from is null or p_to is null or p_to <= p_from then
    raise exception 'the period needs p_from before p_to' using errcode = '22023';
  end if;
  return jsonb_build_object(
    'subscriptions', (
      select jsonb_build_object(
        'active', count(*) filter (where s.status = 'active'),
        'trialing', count(*) filter (where s.status = 'trialing'),
        'past_due', count(*) filter (where s.status = 'past_due'),
        'churned', count(*) filter (where s.status in ('canceled', 'expired', 'incomplete_expired')
                                      and coalesce(s.ended_at, s.canceled_at, s.updated_at) >= p_from
                                      and coalesce(s.ended_at, s.canceled_at, s.updated_at) < p_to))
        from public.organization_subscriptions s),
    'payments', (
      select jsonb_build_object(
        'paid', count(*) filter (where h.status in ('paid', 'partially_refunded', 'refunded')),
        'failed', count(*) filter (where h.status = 'failed'),
        'success_rate', case when count(*) filter (where h.status <> 'open' and h.status <> 'void') = 0 then null
          else round(count(*) filter (where h.status in ('paid', 'partially_refunded', 'refunded'))::numeric
                     / count(*) filter (where h.status <> 'open' and h.status <> 'void'), 4) end)
        from public.billing_history h
       where h.kind <> 'refund' and h.occurred_at >= p_from and h.occurred_at < p_to),
    'consumption_by_event', coalesce((
      select jsonb_agg(jsonb_build_object('event_key', u.event_key, 'events', u.events, 'credits', u.credits)
                       order by u.credits desc, u.event_key)
        from (select c.event_key, count(*) as events, sum(c.credits) as credits
                from public.credit_consumptions c
               where c.created_at >= p_from and c.created_at < p_to
               group by c.event_key) u), '[]'::jsonb)
  );
end;
$$;
comment on function public.billing_overview(timestamptz, timestamptz) is
  'Service role: subscription health, payment success rate and consumption by event for a period.';
revoke all on function public.billing_overview(timestamptz, timestamptz) from public, anon, authenticated;
grant execute on function public.billing_overview(timestamptz, timestamptz) to service_role;

/**
 * Raises an unusual_usage alert for every organization whose consumption in the last hour
 * is more than p_factor times its hourly average over the previous seven days (and at least
 * p_min_credits). One alert per organization per hour. Service role; run it on a schedule.
 * Returns how many organizations were alerted.
 */
create function public.detect_unusual_usage(p_factor numeric default 5, p_min_credits integer default 100)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row record;
  v_count integer := 0;
begin
  perform private.require_service();
  if p_factor is null or p_factor <= 1 or p_min_credits is null or p_min_credits < 0 then
    raise exception 'factor must be above 1 and the minimum zero or more' using errcode = '22023';
  end if;
  for v_row in
    select c.organization_id,
           sum(c.credits) filter (where c.created_at >= now() - interval '1 hour') as last_hour,
           coalesce(sum(c.credits) filter (where c.created_at < now() - interval '1 hour'), 0) / (7 * 24.0) as hourly_average
      from public.credit_consumptions c
     where c.created_at >= now() - interval '1 hour' - interval '7 days'
     group by c.organization_id
  loop
    if v_row.last_hour >= p_min_credits and v_row.last_hour > p_factor * v_row.hourly_average then
      perform private.raise_alert(v_row.organization_id, 'unusual_usage', 'warning', 'Unusual credit usage',
        pg_catalog.format('%s credits were used in the last hour, against an hourly average of %s.',
          v_row.last_hour, round(v_row.hourly_average, 1)),
        jsonb_build_object('last_hour', v_row.last_hour, 'hourly_average', round(v_row.hourly_average, 2)),
        'unusual_usage:' || pg_catalog.to_char(date_trunc('hour', now() at time zone 'utc'), 'YYYY-MM-DD"T"HH24'));
      v_count := v_count + 1;
    end if;
  end loop;
  return v_count;
end;
$$;
comment on function public.detect_unusual_usage(numeric, integer) is
  'Service role: alerts organizations whose last-hour consumption is far above their 7-day hourly average.';
revoke all on function public.detect_unusual_usage(numeric, integer) from public, anon, authenticated;
grant execute on function public.detect_unusual_usage(numeric, integer) to service_role;
