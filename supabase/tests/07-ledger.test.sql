-- The ledger: credit_transactions (with credit_consumptions and credit_clawbacks beside it)
-- is append-only for everyone, the table owner included, and always agrees with the lots
-- and with get_credit_balance. Organization L goes through every kind of movement the
-- functions write: grants, consumptions across sources, a claw-back, an expiry and a renewal.

begin;
select plan(41);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('lena@ledger.test');  -- member of L
select tests.create_user('sam@ledger.test');   -- member of nothing

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000000d1', 'L'),
  ('00000000-0000-4000-8000-0000000000d2', 'M');
insert into public.organization_members (organization_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000000d1', tests.get_user_id('lena@ledger.test'), 'member');

select public.grant_credits('00000000-0000-4000-8000-0000000000d1', 100, 'purchased', null, 'cs_l1');                          -- 100
select public.grant_credits('00000000-0000-4000-8000-0000000000d1', 200, 'subscription', now() + interval '30 days', 'in_l1');  -- 300
select public.consume_credits('00000000-0000-4000-8000-0000000000d1', 'api_call_basic', 30);                                   -- 270
select public.consume_credits('00000000-0000-4000-8000-0000000000d1', 'api_call_premium', 10);                                 -- 220
select public.consume_credits('00000000-0000-4000-8000-0000000000d1', 'ai_inference', 2, 'split');                             -- 170: 20 purchased + 30 subscription
select public.grant_credits('00000000-0000-4000-8000-0000000000d1', 40, 'purchased', null, 'cs_l2');                           -- 210
select public.claw_back_refund('00000000-0000-4000-8000-0000000000d1', 're_l1', 50, 'cs_l1');                                  -- 170: 40 clawed back, 10 short
select tests.add_lot('00000000-0000-4000-8000-0000000000d1', 'subscription', 25, now() - interval '1 day');                    -- expired
select public.allocate_subscription_credits('00000000-0000-4000-8000-0000000000d1', 'in_l2', 300,
  now() - interval '1 hour', now() + interval '29 days');                                                                       -- 470, expired lot swept
select public.consume_credits('00000000-0000-4000-8000-0000000000d1', 'api_call_basic', 5);                                    -- 465

select public.grant_credits('00000000-0000-4000-8000-0000000000d2', 10, 'purchased', null, 'cs_m1');
select public.consume_credits('00000000-0000-4000-8000-0000000000d2', 'api_call_basic', 3);                                    -- 7

create function pg_temp.ledger_fingerprint() returns text
language sql
as $$
  select md5(concat_ws('|',
    (select jsonb_agg(to_jsonb(t) order by t.id)::text from public.credit_transactions t),
    (select jsonb_agg(to_jsonb(c) order by c.id)::text from public.credit_consumptions c),
    (select jsonb_agg(to_jsonb(c) order by c.id)::text from public.credit_clawbacks c)
  ));
$$;
select set_config('t.ledger', pg_temp.ledger_fingerprint(), true);
select set_config('t.l_rows', (select count(*) from public.credit_transactions t where t.organization_id = '00000000-0000-4000-8000-0000000000d1')::text, true);
select set_config('t.l_balance', public.get_credit_balance('00000000-0000-4000-8000-0000000000d1')::text, true);

-- ============================================================================
-- Table owner (superuser): append-only holds even here
-- ============================================================================

select throws_ok($$ update public.credit_transactions set amount = amount $$, '42501', null,
  'not even the table owner can update a ledger row');
select throws_ok($$ delete from public.credit_transactions $$, '42501', null,
  'not even the table owner can delete a ledger row');
select throws_ok($$ truncate public.credit_transactions $$, '42501', null,
  'not even the table owner can truncate the ledger');
select throws_ok($$ update public.credit_consumptions set metadata = '{}' $$, '42501', null,
  'not even the table owner can update a consumption');
select throws_ok($$ delete from public.credit_consumptions $$, '42501', null,
  'not even the table owner can delete a consumption');
select throws_ok($$ truncate public.credit_consumptions cascade $$, '42501', null,
  'not even the table owner can truncate consumptions (with the ledger rows that reference them)');
select throws_ok($$ update public.credit_clawbacks set clawed_back = requested $$, '42501', null,
  'not even the table owner can update a claw-back');
select throws_ok($$ delete from public.credit_clawbacks $$, '42501', null,
  'not even the table owner can delete a claw-back');
select throws_ok($$ truncate public.credit_clawbacks $$, '42501', null,
  'not even the table owner can truncate claw-backs');

select throws_ok(
  $$ insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id)
     select l.organization_id, 'grant', l.source, -5, 0, l.id from public.credit_lots l limit 1 $$,
  '23514', null, 'the ledger refuses a grant with a negative amount');
select throws_ok(
  $$ insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id)
     select l.organization_id, 'consumption', l.source, 5, 0, l.id from public.credit_lots l limit 1 $$,
  '23514', null, 'the ledger refuses a consumption with a positive amount');
select throws_ok($$ update public.credit_lots set remaining = -1 $$, '23514', null,
  'no lot can go below zero, whoever writes it');
select throws_ok($$ update public.credit_lots set remaining = granted + 1 $$, '23514', null,
  'no lot can hold more than was granted, whoever writes it');

-- ============================================================================
-- Invariants
-- ============================================================================

select results_eq(
  $$ select t.organization_id, sum(t.amount)::integer from public.credit_transactions t group by 1 order by 1 $$,
  $$ select l.organization_id, sum(l.remaining)::integer from public.credit_lots l group by 1 order by 1 $$,
  'per organization the ledger''s amounts sum to the credit left in the lots'
);
select is_empty(
  $$ select o.id from public.organizations o
      where o.id in ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-0000000000d2')
        and (select sum(t.amount) from public.credit_transactions t where t.organization_id = o.id)
            <> (public.get_credit_balance(o.id) ->> 'total')::bigint $$,
  'with every expiry written, the ledger''s amounts sum to the balance get_credit_balance reports'
);
select is(
  (select t.balance_after from public.credit_transactions t
    where t.organization_id = '00000000-0000-4000-8000-0000000000d1' order by t.id desc limit 1),
  465,
  'the last ledger row''s balance_after is the organization''s balance'
);
select is_empty(
  $$ select t.id from (
       select t.id, t.balance_after, sum(t.amount) over (partition by t.organization_id order by t.id) as running
         from public.credit_transactions t
     ) t where t.balance_after <> t.running $$,
  'every ledger row''s balance_after is the running sum of the organization''s amounts'
);
select is_empty(
  $$ select t.id from public.credit_transactions t
      where (t.kind = 'grant' and t.amount <= 0)
         or (t.kind in ('consumption', 'expiry', 'refund') and t.amount >= 0)
         or (t.kind = 'adjustment' and t.amount = 0) $$,
  'grants are positive; consumption, expiry and claw-back rows are negative'
);
select results_eq(
  $$ select distinct t.kind::text from public.credit_transactions t
      where t.organization_id = '00000000-0000-4000-8000-0000000000d1' order by 1 $$,
  $$ values ('consumption'), ('expiry'), ('grant'), ('refund') $$,
  'the fixture exercises every kind of movement the functions write'
);
select is_empty(
  $$ select c.id from public.credit_consumptions c
      where c.credits <> -(select sum(t.amount) from public.credit_transactions t where t.consumption_id = c.id)
         or c.purchased_used <> -coalesce((select sum(t.amount) from public.credit_transactions t
                                           where t.consumption_id = c.id and t.source = 'purchased'), 0)
         or c.subscription_used <> -coalesce((select sum(t.amount) from public.credit_transactions t
                                              where t.consumption_id = c.id and t.source = 'subscription'), 0) $$,
  'each consumption''s ledger rows debit exactly its credits, split by source as it reported'
);
select is(
  (select c.purchased_used || '/' || c.subscription_used from public.credit_consumptions c where c.idempotency_key = 'split'),
  '20/30',
  'a consumption spanning two sources records the split'
);
select is_empty(
  $$ select l.id from public.credit_lots l
      where (select count(*) from public.credit_transactions t where t.lot_id = l.id and t.kind = 'grant') <> 1
         or l.granted <> (select t.amount from public.credit_transactions t where t.lot_id = l.id and t.kind = 'grant')
         or l.remaining <> (select sum(t.amount) from public.credit_transactions t where t.lot_id = l.id) $$,
  'every lot has one grant row for what it was granted, and its ledger rows sum to what it has left'
);
select is_empty(
  $$ select t.id from public.credit_transactions t join public.credit_lots l on l.id = t.lot_id
      where t.source <> l.source or t.organization_id <> l.organization_id $$,
  'every ledger row carries its lot''s organization and source'
);
select is_empty(
  $$ select l.id from public.credit_lots l where l.remaining < 0 or l.remaining > l.granted $$,
  'no lot is below zero or above what was granted'
);

-- ============================================================================
-- The ledger's contract columns
-- ============================================================================

select col_type_is('public', 'credit_transactions', 'organization_id', 'uuid', 'the ledger has organization_id uuid');
select col_type_is('public', 'credit_transactions', 'amount', 'integer', 'the ledger has a signed integer amount');
select col_type_is('public', 'credit_transactions', 'kind', 'credit_transaction_kind', 'the ledger has a kind');
select col_type_is('public', 'credit_transactions', 'source', 'credit_source', 'the ledger has a source (purchased or subscription)');
select col_type_is('public', 'credit_transactions', 'balance_after', 'integer', 'the ledger has an integer balance_after');
select col_type_is('public', 'credit_transactions', 'created_at', 'timestamp with time zone', 'the ledger has created_at');

-- ============================================================================
-- Member
-- ============================================================================

select tests.authenticate_as('lena@ledger.test');

select is(
  public.get_credit_balance('00000000-0000-4000-8000-0000000000d1'),
  jsonb_build_object('total', 465, 'purchased', 0, 'subscription', 465,
                     'next_expiry_at', now() + interval '29 days', 'expiring_amount', 295, 'reserved', 0),
  'a member reads their organization''s balance'
);
select is((select count(*)::text from public.credit_transactions), current_setting('t.l_rows'),
  'a member reads their organization''s whole ledger');
select throws_ok($$ update public.credit_transactions set amount = amount $$, '42501', null,
  'a member cannot update the ledger');

-- ============================================================================
-- Stranger
-- ============================================================================

select tests.authenticate_as('sam@ledger.test');

select throws_ok($$ select public.get_credit_balance('00000000-0000-4000-8000-0000000000d1') $$, '42501', null,
  'a stranger cannot read an organization''s balance');
select throws_ok($$ select public.get_credit_balance(gen_random_uuid()) $$, '42501', null,
  'a stranger gets the same error for an organization that does not exist');

-- ============================================================================
-- Anon
-- ============================================================================

select tests.clear_authentication();

select throws_ok($$ select public.get_credit_balance('00000000-0000-4000-8000-0000000000d1') $$, '42501', null,
  'anon cannot call get_credit_balance');
select throws_ok($$ select count(*) from public.credit_transactions $$, '42501', null,
  'anon cannot read the ledger');

-- ============================================================================
-- Service role
-- ============================================================================

select tests.authenticate_as_service_role();

select is(public.get_credit_balance('00000000-0000-4000-8000-0000000000d1')::text, current_setting('t.l_balance'),
  'the service role reads any organization''s balance');
select throws_ok($$ delete from public.credit_transactions $$, '42501', null,
  'the service role cannot delete ledger rows');
select throws_ok($$ truncate public.credit_transactions $$, '42501', null,
  'the service role cannot truncate the ledger');

reset role;
select is(pg_temp.ledger_fingerprint(), current_setting('t.ledger'),
  'after every attempt above the ledger, consumptions and claw-backs are exactly as written');

select * from finish();
rollback;
