import { useEffect, useId, useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { EmptyState, ErrorState, Skeleton } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatCredits, formatDate, formatMoney } from "@/lib/format";
import { canManageBilling } from "@/lib/roles";
import type { BillingInterval, OrganizationRole, SubscriptionPlan } from "@/types/billing";
import { billingKey } from "../../api/billing-keys";
import { useCreditBalance } from "../../api/get-credit-balance";
import { usePlans } from "../../api/get-plans";
import { useUpcomingInvoice } from "../../api/get-upcoming-invoice";
import { useSubscription } from "../../api/get-subscription";
import { ManagerOnly } from "../../components/manager-only";
import { SubscriptionStatusBadge } from "../../components/subscription-status";
import { useOpenCustomerPortal } from "../api/open-customer-portal";
import { useStartSubscriptionCheckout } from "../api/start-subscription-checkout";
import { useTrialEligibility } from "../api/get-trial-eligibility";
import { useCancelScheduledChange } from "../api/cancel-scheduled-change";
import { useResumeSubscription } from "../api/resume-subscription";
import { intervalWord, isChangeApplied, type AwaitedChange } from "../awaited-change";
import { PlanChangeDialog } from "./plan-change-dialog";

const LIVE = new Set(["trialing", "active", "past_due", "unpaid", "incomplete", "paused"]);

/** What a plan card says about the free trial: offered, already used, or nothing (not known, or not relevant). */
type TrialOffer = "offered" | "used" | "hidden";

function TrialLine({ plan, offer }: { plan: SubscriptionPlan; offer: TrialOffer }) {
  if (plan.trial_days <= 0 || offer === "hidden") return null;
  if (offer === "used") return <p className="muted">Your free trial has been used: this plan is billed from the first day.</p>;
  return (
    <p>
      {plan.trial_days}-day free trial{plan.trial_credits > 0 ? ` with ${formatCredits(plan.trial_credits)}` : ""}
    </p>
  );
}

function PlanCard({
  plan,
  interval,
  isCurrent,
  trial,
  children,
  action,
}: {
  plan: SubscriptionPlan;
  interval: BillingInterval;
  isCurrent: boolean;
  trial: TrialOffer;
  children?: React.ReactNode;
  action: React.ReactNode;
}) {
  const price = interval === "month" ? plan.monthly_unit_amount : plan.annual_unit_amount;
  const credits = interval === "month" ? plan.monthly_credits : plan.annual_credits;
  // What paying yearly saves against twelve monthly payments, when it does.
  const annualSaving = plan.monthly_unit_amount * 12 - plan.annual_unit_amount;
  const headingId = useId();
  return (
    <li className={`card plan ${isCurrent ? "plan-current" : ""}`} aria-labelledby={headingId}>
      <h3 id={headingId}>
        {plan.name} {isCurrent ? <span className="badge badge-good">Current plan</span> : null}
      </h3>
      <p className="price">
        {formatMoney(price, plan.currency)} <span>/ {interval === "month" ? "month" : "year"}</span>
      </p>
      {interval === "year" && annualSaving > 0 ? <p className="saving">Saves {formatMoney(annualSaving, plan.currency)} a year</p> : null}
      <p>
        {formatCredits(credits)} per {interval === "month" ? "month" : "year"}
      </p>
      <TrialLine plan={plan} offer={trial} />
      <p className="muted">{plan.description}</p>
      <ul className="features">
        {plan.features.map((feature) => (
          <li key={feature}>{feature}</li>
        ))}
      </ul>
      {children}
      {/* Pushed to the bottom of the card, so every card's button sits on the same row. */}
      {action ? <div className="plan-action">{action}</div> : null}
    </li>
  );
}

/** Subscriptions that can be switched to another plan or interval in the app. */
const SWITCHABLE = new Set(["trialing", "active", "past_due"]);

/** What the tab says once a change it waited for shows. */
function appliedMessage(change: AwaitedChange): string {
  switch (change.kind) {
    case "upgrade":
      return `You are now on ${change.planName} (${intervalWord(change.interval)}).${change.creditsAdded > 0 ? ` ${formatCredits(change.creditsAdded)} were added to your balance.` : ""}`;
    case "scheduled":
      return `Your plan changes to ${change.planName} (${intervalWord(change.interval)}) on ${formatDate(change.effectiveAt)}. Nothing was charged.`;
    case "keep":
      return "The scheduled change is cancelled: you keep your current plan.";
    case "resume":
      return "Your subscription is resumed: it renews as usual.";
  }
}

/** How long the tab re-reads after a change before saying Stripe's confirmation is late. */
const AWAIT_FOR_MS = 60_000;
const AWAIT_POLL_MS = 2000;

/** Plans tab: monthly/annual toggle, plans side by side; checkout, switching, keep and resume for managers. */
export default function PlansTab({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  const [chosenInterval, setInterval] = useState<BillingInterval | null>(null);
  const [switchTo, setSwitchTo] = useState<{ plan: SubscriptionPlan; interval: BillingInterval } | null>(null);
  const [awaited, setAwaited] = useState<{ change: AwaitedChange; until: number } | null>(null);
  const [outcome, setOutcome] = useState<{ text: string; late: boolean } | null>(null);
  const poll = () => (awaited && Date.now() < awaited.until ? AWAIT_POLL_MS : false);
  const plans = usePlans();
  const subscription = useSubscription(organizationId, poll);
  const live = subscription.data && LIVE.has(subscription.data.status) ? subscription.data : null;
  const upcoming = useUpcomingInvoice(organizationId, { enabled: live !== null, refetchInterval: poll });
  // An upgrade's credits arrive with its invoice's webhook: the balance is re-read meanwhile.
  useCreditBalance(organizationId, poll);
  const eligibility = useTrialEligibility(organizationId);
  const checkout = useStartSubscriptionCheckout();
  const portal = useOpenCustomerPortal();
  const keep = useCancelScheduledChange();
  const resume = useResumeSubscription();
  const queryClient = useQueryClient();
  const manager = canManageBilling(role);

  useEffect(() => {
    if (!awaited) return;
    if (isChangeApplied(awaited.change, subscription.data, upcoming.data)) {
      setOutcome({ text: appliedMessage(awaited.change), late: false });
      setAwaited(null);
      void queryClient.invalidateQueries({ queryKey: billingKey(organizationId) });
      return;
    }
    const timer = window.setTimeout(() => {
      setOutcome({ text: "Stripe has the change; it shows here as soon as Stripe confirms it.", late: true });
      setAwaited(null);
    }, Math.max(0, awaited.until - Date.now()));
    return () => window.clearTimeout(timer);
  }, [awaited, subscription.data, upcoming.data, queryClient, organizationId]);

  function awaitChange(change: AwaitedChange) {
    setOutcome(null);
    setAwaited({ change, until: Date.now() + AWAIT_FOR_MS });
    // Read again at once (the webhook is often there already); the polling covers the rest.
    void queryClient.invalidateQueries({ queryKey: billingKey(organizationId) });
  }

  if (plans.isPending || subscription.isPending) return <Skeleton label="Loading plans…" lines={8} />;
  if (plans.isError) return <ErrorState title="Plans could not be loaded." error={plans.error} onRetry={() => void plans.refetch()} />;
  if (subscription.isError && !subscription.data) {
    return <ErrorState title="The subscription could not be loaded." error={subscription.error} onRetry={() => void subscription.refetch()} />;
  }
  if (plans.data.length === 0) return <EmptyState>No plans are on sale right now.</EmptyState>;

  const interval = chosenInterval ?? live?.billing_interval ?? "month";
  const busy = checkout.isPending || portal.isPending || keep.isPending || resume.isPending || awaited !== null;
  const failure = checkout.error ?? portal.error ?? keep.error ?? resume.error;
  const ending = live !== null && live.cancel_at_period_end;
  const scheduled = upcoming.data?.scheduled_change ?? null;
  const canSwitch = manager && live !== null && !ending && SWITCHABLE.has(live.status);
  // A trial is promised only once the database has said this organization may have one;
  // with a live subscription there is nothing to check out, so nothing to promise.
  const trial: TrialOffer = live || !eligibility.data ? "hidden" : eligibility.data.eligible ? "offered" : "used";

  return (
    <div className="stack">
      <fieldset className="segmented">
        <legend>Billing period</legend>
        {(["month", "year"] as const).map((value) => (
          <label key={value}>
            <input type="radio" name="interval" value={value} checked={interval === value} onChange={() => setInterval(value)} />
            {value === "month" ? "Monthly" : "Annual"}
          </label>
        ))}
      </fieldset>
      <ManagerOnly role={role} organizationId={organizationId} toDo={live ? "switch plans or resume the subscription" : "choose a plan"}>
        {live ? (
          <p>
            <button type="button" className="button secondary" disabled={busy} onClick={() => portal.mutate(organizationId)}>
              {portal.isPending ? "Opening portal…" : "Manage subscription"}
            </button>{" "}
            <span className="muted">Payment method, invoices or cancelling, in the customer portal. Switch plans here.</span>
          </p>
        ) : null}
      </ManagerOnly>
      {live ? (
        <p>
          Your subscription: <SubscriptionStatusBadge subscription={live} />
        </p>
      ) : null}
      {ending && manager ? <p className="muted">Resume the subscription to switch plans.</p> : null}
      {awaited ? (
        <p className="banner banner-pending" role="status">
          <span>
            <span className="spinner" aria-hidden="true" /> Done at Stripe; waiting for it to confirm…
          </span>
        </p>
      ) : outcome ? (
        <p className={`banner ${outcome.late ? "banner-info" : "banner-success"}`} role="status">
          {outcome.text}
        </p>
      ) : null}
      {failure ? <p role="alert" className="field-error">{errorMessage(failure)}</p> : null}
      <ul className="plans">
        {plans.data.map((plan) => {
          const isCurrent = live?.plan_id === plan.id && live.billing_interval === interval;
          let action: React.ReactNode = null;
          if (manager && !live) {
            action = (
              <button
                type="button"
                className="button"
                disabled={busy}
                onClick={() => checkout.mutate({ organization_id: organizationId, plan_code: plan.code, interval })}
              >
                {checkout.isPending && checkout.variables?.plan_code === plan.code ? "Opening checkout…" : `Choose ${plan.name}`}
              </button>
            );
          } else if (manager && live && isCurrent && ending) {
            action = (
              <button
                type="button"
                className="button"
                disabled={busy}
                onClick={() => resume.mutate(organizationId, { onSuccess: () => awaitChange({ kind: "resume" }) })}
              >
                {resume.isPending ? "Resuming…" : "Resume subscription"}
              </button>
            );
          } else if (manager && isCurrent && scheduled) {
            action = (
              <button
                type="button"
                className="button secondary"
                disabled={busy}
                onClick={() => keep.mutate(organizationId, { onSuccess: () => awaitChange({ kind: "keep" }) })}
              >
                {keep.isPending ? "Keeping…" : "Keep current plan"}
              </button>
            );
          } else if (canSwitch && !isCurrent) {
            action = (
              // The label adds the interval to the visible words: the same plan can be offered in the other interval.
              <button
                type="button"
                className="button"
                disabled={busy}
                aria-label={`Switch to ${plan.name} (${intervalWord(interval)})`}
                onClick={() => setSwitchTo({ plan, interval })}
              >
                Switch to {plan.name}
              </button>
            );
          }
          return (
            <PlanCard key={plan.id} plan={plan} interval={interval} isCurrent={isCurrent} trial={trial} action={action}>
              {isCurrent && scheduled ? (
                <p className="notice">
                  Changes to {scheduled.plan_name} ({intervalWord(scheduled.interval)}) on {formatDate(scheduled.effective_at)}.
                </p>
              ) : null}
              {isCurrent && ending ? (
                <p className="notice">Ends on {formatDate(live.cancel_at ?? live.current_period_end ?? "")}: it does not renew.</p>
              ) : null}
            </PlanCard>
          );
        })}
      </ul>
      {switchTo ? (
        <PlanChangeDialog
          organizationId={organizationId}
          plan={switchTo.plan}
          interval={switchTo.interval}
          onClose={() => setSwitchTo(null)}
          onChanged={(result, preview) => {
            const target = switchTo;
            setSwitchTo(null);
            awaitChange(
              result.kind === "upgrade"
                ? { kind: "upgrade", planId: target.plan.id, planName: target.plan.name, interval: target.interval, creditsAdded: preview.credits_now }
                : { kind: "scheduled", planCode: target.plan.code, planName: target.plan.name, interval: target.interval, effectiveAt: result.effective_at },
            );
          }}
        />
      ) : null}
    </div>
  );
}
