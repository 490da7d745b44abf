-- History: what each organization paid, or failed to pay, or got back. One row per Stripe
-- payment object (invoice, credit-pack checkout, refund), updated as its status moves
-- forward, with links to Stripe's hosted invoice and receipt.

-- ============================================================================
-- Types
-- ============================================================================

create type public.billing_history_kind as enum ('subscription_invoice', 'credit_purchase', 'refund');

-- Declared in the order a payment's status may move: a late "failed" delivery can never
-- overwrite "paid", and "paid" can still become refunded.
create type public.billing_history_status as enum (
  'open', 'failed', 'void', 'paid', 'partially_refunded', 'refunded'
);
comment on type public.billing_history_status is 'Payment status, ordered: a row only ever moves to a later status.';

-- ============================================================================
-- Tables
-- ============================================================================

create table public.billing_history (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  stripe_reference text not null unique,
  kind public.billing_history_kind not null,
  status public.billing_history_status not null,
  description text not null default '',
  amount bigint not null check (amount >= 0),
  currency text not null check (currency ~ '^[a-z]{3}$'),
  stripe_invoice_id text,
  stripe_payment_intent_id text,
  stripe_charge_id text,
  stripe_checkout_session_id text,
  stripe_refund_id text,
  invoice_url text check (invoice_url is null or invoice_url ~ '^https?://'),
  invoice_pdf_url text check (invoice_pdf_url is null or invoice_pdf_url ~ '^https?://'),
  receipt_url text check (receipt_url is null or receipt_url ~ '^https?://'),
  period_start timestamptz,
  period_end timestamptz,
  occurred_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.billing_history enable row level security;

comment on table public.billing_history is 'Payments, invoices and refunds per organization, one row per Stripe object.';
comment on column public.billing_history.stripe_reference is
  'The Stripe id this row mirrors (invoice in_..., checkout session cs_..., refund re_...); the idempotency key of record_billing_history.';
comment on column public.billing_history.amount is 'Amount in the currency''s minor unit (Stripe "amount_paid" / "amount_total" / refund "amount").';
comment on column public.billing_history.invoice_url is 'Stripe "hosted_invoice_url".';
comment on column public.billing_history.invoice_pdf_url is 'Stripe "invoice_pdf".';
comment on column public.billing_history.receipt_url is 'Stripe charge "receipt_url".';
comment on column public.billing_history.occurred_at is 'When the payment happened at Stripe (from Stripe, Unix seconds converted).';

-- ============================================================================
-- Indexes
-- ============================================================================

-- The History tab: newest first per organization.
create index billing_history_organization_id_idx on public.billing_history (organization_id, occurred_at desc, id desc);

create trigger billing_history_touch_updated_at before update on public.billing_history
  for each row execute function private.touch_updated_at();

-- ============================================================================
-- RLS policies and privileges
-- ============================================================================

create policy "Members can read their organization's billing history"
  on public.billing_history for select to authenticated
  using (organization_id in (select private.current_user_organization_ids()));

revoke insert, update, delete, truncate on public.billing_history from anon, authenticated;
revoke all on public.billing_history from anon;

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * Records a payment, invoice or refund for an organization, keyed by its Stripe id.
 * Service role only. Replays are harmless: a row's status only moves forward
 * (open -> failed -> paid -> refunded), its links and amounts fill in as they arrive, and a
 * late or duplicate delivery never moves it back. Returns the row id.
 */
create function public.record_billing_history(
  p_organization_id uuid,
  p_stripe_reference text,
  p_kind text,
  p_status text,
  p_amount bigint,
  p_currency text,
  p_occurred_at timestamptz,
  p_description text default '',
  p_details jsonb default '{}'
) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_owner uuid;
begin
  perform private.require_service();
  if p_stripe_reference is null or p_stripe_reference !~ '^[A-Za-z0-9_]{3,255}$' then
    raise exception 'stripe reference must be a Stripe object id' using errcode = '22023';
  end if;
  if p_kind is null or p_kind not in ('subscription_invoice', 'credit_purchase', 'refund') then
    raise exception 'invalid billing history kind %', coalesce(p_kind, 'null') using errcode = '22023';
  end if;
  if p_status is null or p_status not in ('open', 'failed', 'void', 'paid', 'partially_refunded', 'refunded') then
    raise exception 'invalid billing history status %', coalesce(p_status, 'null') using errcode = '22023';
  end if;
  if p_amount is null or p_amount < 0 then
    raise exception 'amount must be zero or positive (minor units)' using errcode = '22023';
  end if;
  if p_currency is null or lower(p_currency) !~ '^[a-z]{3}$' then
    raise exception 'currency must be a three-letter ISO code' using errcode = '22023';
  end if;
  if p_occurred_at is null then
    raise exception 'occurred_at is required' using errcode = '22023';
  end if;
  if p_details is null or jsonb_typeof(p_details) <> 'object' then
    raise exception 'details must be a JSON object' using errcode = '22023';
  end if;
  if not exists (select 1 from public.organizations o where o.id = p_organization_id) then
    raise exception 'organization not found' using errcode = 'PT404';
  end if;

  select h.organization_id into v_owner
    from public.billing_history h where h.stripe_reference = p_stripe_reference;
  if v_owner is not null and v_owner <> p_organization_id then
    raise exception 'stripe reference % belongs to another organization', p_stripe_reference
      using errcode = 'PT409';
  end if;

  insert into public.billing_history as h (
    organization_id, stripe_reference, kind, status, description, amount, currency,
    stripe_invoice_id, stripe_payment_intent_id, stripe_charge_id, stripe_checkout_session_id,
    stripe_refund_id, invoice_url, invoice_pdf_url, receipt_url, period_start, period_end, occurred_at
  ) values (
    p_organization_id, p_stripe_reference, p_kind::public.billing_history_kind,
    p_status::public.billing_history_status, coalesce(p_description, ''), p_amount, lower(p_currency),
    p_details ->> 'stripe_invoice_id', p_details ->> 'stripe_payment_intent_id',
    p_details ->> 'stripe_charge_id', p_details ->> 'stripe_checkout_session_id',
    p_details ->> 'stripe_refund_id', p_details ->> 'invoice_url', p_details ->> 'invoice_pdf_url',
    p_details ->> 'receipt_url', (p_details ->> 'period_start')::timestamptz,
    (p_details ->> 'period_end')::timestamptz, p_occurred_at
  )
  on conflict (stripe_reference) do update set
    status = greatest(h.status, excluded.status),
    amount = case when excluded.status >= h.status then excluded.amount else h.amount end,
    description = case when excluded.description <> '' then excluded.description else h.description end,
    stripe_invoice_id = coalesce(excluded.stripe_invoice_id, h.stripe_invoice_id),
    stripe_payment_intent_id = coalesce(excluded.stripe_payment_intent_id, h.stripe_payment_intent_id),
    stripe_charge_id = coalesce(excluded.stripe_charge_id, h.stripe_charge_id),
    stripe_checkout_session_id = coalesce(excluded.stripe_checkout_session_id, h.stripe_checkout_session_id),
    stripe_refund_id = coalesce(excluded.stripe_refund_id, h.stripe_refund_id),
    invoice_url = coalesce(excluded.invoice_url, h.invoice_url),
    invoice_pdf_url = coalesce(excluded.invoice_pdf_url, h.invoice_pdf_url),
    receipt_url = coalesce(excluded.receipt_url, h.receipt_url),
    period_start = coalesce(excluded.period_start, h.period_start),
    period_end = coalesce(excluded.period_end, h.period_end)
  returning h.id into v_id;
  return v_id;
end;
$$;
comment on function public.record_billing_history(uuid, text, text, text, bigint, text, timestamptz, text, jsonb) is
  'Service role: upserts a billing history row by Stripe id; status only moves forward. p_details keys: stripe_invoice_id, stripe_payment_intent_id, stripe_charge_id, stripe_checkout_session_id, stripe_refund_id, invoice_url, invoice_pdf_url, receipt_url, period_start, period_end.';
revoke all on function public.record_billing_history(uuid, text, text, text, bigint, text, timestamptz, text, jsonb) from public, anon, authenticated;
grant execute on function public.record_billing_history(uuid, text, text, text, bigint, text, timestamptz, text, jsonb) to service_role;
