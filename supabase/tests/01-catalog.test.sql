-- Catalog check: what the system catalogs say about every table, policy and function, so a
-- table added without RLS, a function left executable by anon or a security definer function
-- without a pinned search_path fails here before any behaviour test runs. The queries scan
-- whole schemas rather than listing today's objects, so new objects are checked too.

begin;
select plan(26);

-- ============================================================================
-- Row Level Security
-- ============================================================================

select is_empty(
  $$ select c.relname::text collate "default"
       from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('public', 'private')
        and c.relkind in ('r', 'p')
        and not c.relrowsecurity $$,
  'every table in public and private has row level security enabled'
);

select is_empty(
  $$ select c.relname::text collate "default"
       from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public'
        and (c.relkind = 'm'
             or (c.relkind = 'v' and not coalesce('security_invoker=true' = any (c.reloptions), false))) $$,
  'no view in public runs with its owner''s rights (security definer views and materialized views bypass RLS)'
);

select is_empty(
  $$ select p.tablename || ': ' || p.policyname
       from pg_catalog.pg_policies p
      where p.schemaname = 'public' and 'public' = any (p.roles) $$,
  'every policy names its roles (anon, authenticated) instead of applying to public by accident'
);

select is_empty(
  $$ select p.tablename || ': ' || p.policyname
       from pg_catalog.pg_policies p
      where p.schemaname = 'public' and p.cmd <> 'SELECT' $$,
  'no policy lets an API role write a table: billing data is written only by the service role and the billing functions'
);

select is_empty(
  $$ select p.tablename || ': ' || p.policyname
       from pg_catalog.pg_policies p
      where p.schemaname = 'public'
        and (coalesce(p.qual, '') || ' ' || coalesce(p.with_check, '')) ~* '(raw_user_meta_data|user_metadata)' $$,
  'no policy reads user-editable metadata (raw_user_meta_data / user_metadata)'
);

select is_empty(
  $$ select n.nspname || '.' || p.proname
       from pg_catalog.pg_proc p
       join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'private')
        and p.prosrc ~* '(raw_user_meta_data|user_metadata)' $$,
  'no billing function (the helpers policies call included) reads user-editable metadata'
);

-- ============================================================================
-- Table privileges per role
-- ============================================================================

select is_empty(
  $$ select c.relname || ' ' || r.role || ' ' || p.privilege
       from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      cross join (values ('anon'), ('authenticated')) as r (role)
      cross join (values ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) as p (privilege)
      where n.nspname = 'public'
        and c.relkind in ('r', 'p', 'v', 'm', 'f')
        and pg_catalog.has_table_privilege(r.role, c.oid, p.privilege) $$,
  'anon and authenticated cannot insert, update, delete or truncate any table in public'
);

select is_empty(
  $$ select t.relname || ' ' || p.privilege
       from (values ('credit_lots'), ('credit_transactions'), ('credit_consumptions'), ('credit_clawbacks')) as t (relname)
      cross join (values ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) as p (privilege)
      where pg_catalog.has_table_privilege('service_role', ('public.' || t.relname)::regclass, p.privilege) $$,
  'the service role cannot write credit lots, the ledger, consumptions or claw-backs directly (only the credit functions do)'
);

select results_eq(
  $$ select c.relname::text collate "default"
       from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public'
        and c.relkind in ('r', 'p', 'v', 'm', 'f')
        and pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
      order by 1 $$,
  $$ values ('credit_events'), ('credit_products'), ('subscription_plans') $$,
  'anon can select only the pricing catalog (plans, credit products, credit events)'
);

select ok(
  not pg_catalog.has_schema_privilege('anon', 'private', 'USAGE'),
  'anon has no usage on the private schema'
);

select ok(
  not pg_catalog.has_schema_privilege('authenticated', 'public', 'CREATE')
    and not pg_catalog.has_schema_privilege('anon', 'public', 'CREATE'),
  'API roles cannot create objects in public'
);

-- ============================================================================
-- Function privileges per role
-- ============================================================================

select is_empty(
  $$ select n.nspname || '.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
       from pg_catalog.pg_proc p
       join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'private')
        and pg_catalog.has_function_privilege('anon', p.oid, 'EXECUTE') $$,
  'anon can execute no function in public or private'
);

select results_eq(
  $$ select p.proname::text collate "default"
       from pg_catalog.pg_proc p
       join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public'
        and pg_catalog.has_function_privilege('authenticated', p.oid, 'EXECUTE')
      order by 1 $$,
  $$ values ('add_organization_member'), ('adjust_credits'), ('consume_credits'), ('consume_credits_batch'), ('create_organization'),
            ('dismiss_billing_alert'), ('dismiss_operator_alert'), ('get_credit_balance'), ('get_spend_limit'), ('is_billing_operator'),
            ('operator_alerts'), ('operator_consumption'), ('operator_export_history'), ('operator_export_ledger'),
            ('operator_job_runs'), ('operator_mrr_trend'), ('operator_notifications'), ('operator_organization'), ('operator_organizations'),
            ('operator_overview'), ('operator_retry_notification'), ('operator_stripe_events'), ('operator_top_consumers'), ('organization_managers'),
            ('release_reservation'), ('remove_organization_member'), ('reserve_credits'), ('set_auto_top_up'), ('set_credit_precedence'),
            ('set_low_balance_threshold'), ('set_spend_limit'), ('settle_reservation'), ('trial_eligibility'),
            ('update_organization_member_role') $$,
  'signed-in users can execute exactly the member-facing functions and the operator functions (which check for an operator first) in public (no grant, expiry, allocation, refund or history writer)'
);

select is_empty(
  $$ select p.proname::text collate "default"
       from pg_catalog.pg_proc p
       join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public'
        and not pg_catalog.has_function_privilege('service_role', p.oid, 'EXECUTE') $$,
  'the service role can execute every function in public'
);

select results_eq(
  $$ select p.proname::text collate "default"
       from pg_catalog.pg_proc p
       join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'private'
        and pg_catalog.has_function_privilege('authenticated', p.oid, 'EXECUTE')
      order by 1 $$,
  $$ values ('current_user_organization_ids') $$,
  'signed-in users can execute only the membership helper their RLS policies call; every other private function runs as its owner'
);

select is_empty(
  $$ select n.nspname || '.' || p.proname
       from pg_catalog.pg_proc p
       join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'private')
        and p.prosecdef
        and not coalesce(p.proconfig @> array['search_path=""'], false) $$,
  'every security definer function in public and private sets search_path to the empty string'
);

select is_empty(
  $$ select n.nspname || '.' || p.proname
       from pg_catalog.pg_proc p
       join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'private')
        and p.prokind = 'f'
        and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) as s (setting) where s.setting like 'search_path=%') $$,
  'no function in public or private has a mutable search_path'
);

select is_empty(
  $$ select p.proname::text collate "default"
       from pg_catalog.pg_proc p
       join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public'
        and p.proname in ('consume_credits', 'grant_credits', 'expire_credits', 'allocate_subscription_credits', 'claw_back_refund',
                          'consume_credits_batch', 'reserve_credits', 'settle_reservation', 'release_reservation',
                          'expire_reservations', 'set_spend_limit')
        and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) as s (setting) where s.setting like 'lock_timeout=%') $$,
  'every function that takes the organization''s credit lock sets a lock_timeout, so a stuck lock is a quick retriable error'
);

-- ============================================================================
-- Contract signatures
-- ============================================================================

select function_returns('public', 'consume_credits', array['uuid', 'text', 'integer', 'text', 'jsonb'], 'jsonb',
  'consume_credits(uuid, text, integer, text, jsonb) returns jsonb');
select function_returns('public', 'get_credit_balance', array['uuid'], 'jsonb',
  'get_credit_balance(uuid) returns jsonb');
select function_returns('public', 'create_organization', array['text'], 'uuid',
  'create_organization(text) returns uuid');
select function_returns('public', 'add_organization_member', array['uuid', 'uuid', 'text'], 'void',
  'add_organization_member(uuid, uuid, text) returns void');
select function_returns('public', 'grant_credits', array['uuid', 'integer', 'text', 'timestamp with time zone', 'text'], 'jsonb',
  'grant_credits(uuid, integer, text, timestamptz, text) returns jsonb');
select function_returns('public', 'expire_credits', array[]::text[], 'integer',
  'expire_credits() returns integer');

-- ============================================================================
-- Structure the guarantees rely on
-- ============================================================================

select results_eq(
  $$ select c.relname::text collate "default", count(*)::integer
       from pg_catalog.pg_trigger t
       join pg_catalog.pg_class c on c.oid = t.tgrelid
       join pg_catalog.pg_proc p on p.oid = t.tgfoid
       join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where not t.tgisinternal and n.nspname = 'private' and p.proname = 'forbid_rewrite'
      group by 1
      order by 1 $$,
  $$ values ('credit_clawbacks', 2), ('credit_consumptions', 2), ('credit_transactions', 2) $$,
  'the ledger, consumptions and claw-backs each carry the append-only triggers (update/delete and truncate)'
);

select is_empty(
  $$ select c.conrelid::regclass::text || ' ' || c.conname
       from pg_catalog.pg_constraint c
       join pg_catalog.pg_namespace n on n.oid = c.connamespace
      where c.contype = 'f' and n.nspname = 'public'
        and not exists (
          select 1 from pg_catalog.pg_index i
           where i.indrelid = c.conrelid
             -- a slice re-bases the 0-based int2vector to 1, like conkey
             and (i.indkey::int2[])[0:pg_catalog.array_length(c.conkey, 1) - 1] = c.conkey
        ) $$,
  'every foreign key in public is backed by an index that starts with its columns'
);

select * from finish();
rollback;
