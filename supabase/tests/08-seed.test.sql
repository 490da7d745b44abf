-- Seed: the catalog the contract promises every fresh database (supabase/seed.sql), as the
-- pricing page (anon) sees it.

begin;
select plan(6);

-- ============================================================================
-- Anon (the pricing page)
-- ============================================================================

select tests.clear_authentication();

select results_eq(
  $$ select p.code from public.subscription_plans p where p.code in ('starter', 'professional', 'enterprise') order by p.sort_order $$,
  $$ values ('starter'), ('professional'), ('enterprise') $$,
  'the seed offers the starter, professional and enterprise plans, in that order'
);
select is_empty(
  $$ select p.code from public.subscription_plans p
      where p.code in ('starter', 'professional', 'enterprise')
        and not (p.monthly_unit_amount > 0 and p.annual_unit_amount > 0 and p.monthly_credits > 0) $$,
  'every seeded plan has a monthly price, an annual price and a monthly credit allowance'
);
select ok(
  (select bool_and(p.annual_unit_amount < 12 * p.monthly_unit_amount) from public.subscription_plans p
    where p.code in ('starter', 'professional', 'enterprise')),
  'paying annually costs less than twelve months'
);
select ok(
  (select count(*) >= 2 from public.credit_products),
  'the seed offers at least two credit products'
);
select is_empty(
  $$ select p.code from public.credit_products p where p.credits <= 0 or p.unit_amount <= 0 $$,
  'every seeded credit product grants credits for a price'
);
select results_eq(
  $$ select e.event_key, e.credit_cost from public.credit_events e
      where e.event_key in ('api_call_basic', 'api_call_premium', 'storage_gb_month', 'ai_inference')
      order by e.credit_cost $$,
  $$ values ('api_call_basic', 1), ('api_call_premium', 5), ('storage_gb_month', 10), ('ai_inference', 25) $$,
  'the seeded credit events cost 1, 5, 10 and 25 credits'
);

select * from finish();
rollback;
