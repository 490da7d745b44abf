import { useId, useState } from "react";
import { EmptyState, ErrorState, Skeleton } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatCredits, formatMoney } from "@/lib/format";
import { canManageBilling } from "@/lib/roles";
import type { BillingInterval, OrganizationRole, SubscriptionPlan } from "@/types/billing";
import { usePlans } from "../../api/get-plans";
import { useSubscription } from "../../api/get-subscription";
import { ManagerOnly } from "../../components/manager-only";
import { SubscriptionStatusBadge } from "../../components/subscription-status";
import { useOpenCustomerPortal } from "../api/open-customer-portal";
import { useStartSubscriptionCheckout } from "../api/start-subscription-checkout";
import { useTrialEligibility } from "../api/get-trial-eligibility";

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
  action,
}: {
  plan: SubscriptionPlan;
  interval: BillingInterval;
  isCurrent: boolean;
  trial: TrialOffer;
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
      {action}
    </li>
  );
}

/** Plans tab: monthly/annual toggle, plans side by side, checkout and portal for managers. */
export default function PlansTab({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  const [interval, setInterval] = useState<BillingInterval>("month");
  const plans = usePlans();
  const subscription = useSubscription(organizationId);
  const eligibility = useTrialEligibility(organizationId);
  const checkout = useStartSubscriptionCheckout();
  const portal = useOpenCustomerPortal();
  const manager = canManageBilling(role);

  if (plans.isPending || subscription.isPending) return <Skeleton label="Loading plans…" lines={8} />;
  if (plans.isError) return <ErrorState title="Plans could not be loaded." error={plans.error} onRetry={() => void plans.refetch()} />;
  if (subscription.isError) {
    return <ErrorState title="The subscription could not be loaded." error={subscription.error} onRetry={() => void subscription.refetch()} />;
  }
  if (plans.data.length === 0) return <EmptyState>No plans are on sale right now.</EmptyState>;

  const live = subscription.data && LIVE.has(subscription.data.status) ? subscription.data : null;
  const busy = checkout.isPending || portal.isPending;
  const failure = checkout.error ?? portal.error;
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
      <ManagerOnly role={role}>
        {live ? (
          <p>
            <button type="button" className="button secondary" disabled={busy} onClick={() => portal.mutate(organizationId)}>
              {portal.isPending ? "Opening portal…" : "Manage subscription"}
            </button>{" "}
            <span className="muted">Change plan, payment method or cancel in the customer portal.</span>
          </p>
        ) : null}
      </ManagerOnly>
      {live ? (
        <p>
          Your subscription: <SubscriptionStatusBadge subscription={live} />
        </p>
      ) : null}
      {failure ? <p role="alert" className="field-error">{errorMessage(failure)}</p> : null}
      <ul className="plans">
        {plans.data.map((plan) => {
          const isCurrent = live?.plan_id === plan.id;
          const action =
            manager && !live ? (
              <button
                type="button"
                className="button"
                disabled={busy}
                onClick={() => checkout.mutate({ organization_id: organizationId, plan_code: plan.code, interval })}
              >
                {checkout.isPending && checkout.variables?.plan_code === plan.code ? "Opening checkout…" : `Choose ${plan.name}`}
              </button>
            ) : null;
          return <PlanCard key={plan.id} plan={plan} interval={interval} isCurrent={isCurrent} trial={trial} action={action} />;
        })}
      </ul>
    </div>
  );
}
