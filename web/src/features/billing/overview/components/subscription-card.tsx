import { EmptyState, QueryView, Skeleton } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatDate, formatMoney } from "@/lib/format";
import { canManageBilling } from "@/lib/roles";
import type { OrganizationRole, OrganizationSubscription, SubscriptionPlan } from "@/types/billing";
import { usePlans } from "../../api/get-plans";
import { useSubscription } from "../../api/get-subscription";
import { useUpcomingInvoice } from "../../api/get-upcoming-invoice";
import { SubscriptionStatusBadge } from "../../components/subscription-status";
import { useCardOnFile } from "../../credits/api/auto-top-up";
import { describeCard } from "../../credits/components/card-on-file";
import { useOpenCustomerPortal } from "../../plans/api/open-customer-portal";
import { useBillingViewer } from "../../components/billing-viewer";
import { CHOOSE_A_PLAN, NextStep } from "../../components/next-step";

/** Subscriptions Stripe will charge again (a canceled or expired one has no next charge). */
const RENEWING = new Set(["trialing", "active", "past_due", "unpaid", "incomplete", "paused"]);
/** Subscriptions that are over: the card offers a new plan instead. */
const ENDED = new Set(["canceled", "expired", "incomplete_expired"]);

/**
 * The Overview's subscription card: plan and price, status, the next charge and any scheduled
 * change (Stripe's invoice preview), and the card on file with "Update card" for owners and
 * admins. Without a subscription, the way to the Plans tab.
 */
export function SubscriptionCard({ organizationId }: { organizationId: string }) {
  // Outside a Billing page (a card rendered on its own) nobody is known to be a manager.
  const role: OrganizationRole = useBillingViewer()?.role ?? "member";
  const subscription = useSubscription(organizationId);
  const plans = usePlans();
  return (
    <QueryView query={subscription} loading={<Skeleton label="Loading subscription…" lines={6} />} errorTitle="The subscription could not be loaded.">
      {(current) =>
        current && !ENDED.has(current.status) ? (
          <SubscriptionFacts organizationId={organizationId} role={role} current={current} plan={plans.data?.find((p) => p.id === current.plan_id)} plansPending={plans.isPending} />
        ) : (
          <EmptyState>
            {current ? "Your subscription has ended" : "No subscription yet"}: a plan gives you credits every period.
            <NextStep actions={[CHOOSE_A_PLAN]} toDo="choose a plan" />
          </EmptyState>
        )
      }
    </QueryView>
  );
}

function SubscriptionFacts({
  organizationId,
  role,
  current,
  plan,
  plansPending,
}: {
  organizationId: string;
  role: OrganizationRole;
  current: OrganizationSubscription;
  plan: SubscriptionPlan | undefined;
  plansPending: boolean;
}) {
  const renews = RENEWING.has(current.status) && !current.cancel_at_period_end;
  const upcoming = useUpcomingInvoice(organizationId, { enabled: renews });
  const card = useCardOnFile(organizationId);
  const portal = useOpenCustomerPortal();
  const yearly = current.billing_interval === "year";
  // The catalog is a separate read: say it is loading rather than flash "Unknown plan".
  const planName = plan?.name ?? (plansPending ? "…" : "Unknown plan");
  const price = plan ? (yearly ? plan.annual_unit_amount : plan.monthly_unit_amount) : null;
  const scheduled = upcoming.data?.scheduled_change ?? null;

  return (
    <div className="stack">
      <dl className="facts">
        <dt>Plan</dt>
        <dd>
          {planName} ({yearly ? "annual" : "monthly"})
        </dd>
        {plan && price !== null ? (
          <>
            <dt>Price</dt>
            <dd>
              {formatMoney(price, plan.currency)} / {yearly ? "year" : "month"}
            </dd>
          </>
        ) : null}
        <dt>Status</dt>
        <dd>
          <SubscriptionStatusBadge subscription={current} />
        </dd>
        {current.trial_end && current.status === "trialing" ? (
          <>
            <dt>Trial ends</dt>
            <dd>{formatDate(current.trial_end)}</dd>
          </>
        ) : null}
        {current.current_period_end ? (
          <>
            <dt>Current period ends</dt>
            <dd>{formatDate(current.current_period_end)}</dd>
          </>
        ) : null}
        <dt>Next charge</dt>
        <dd>
          {!renews ? (
            current.cancel_at_period_end ? (
              `None: it ends on ${formatDate(current.cancel_at ?? current.current_period_end ?? current.updated_at)}`
            ) : (
              "None"
            )
          ) : upcoming.data ? (
            `${formatMoney(upcoming.data.amount_due, upcoming.data.currency)} on ${formatDate(upcoming.data.date)}`
          ) : upcoming.data === null ? (
            "None"
          ) : upcoming.isError ? (
            <span className="muted">Not available right now{current.current_period_end ? `; the period renews on ${formatDate(current.current_period_end)}` : ""}.</span>
          ) : (
            <span className="skeleton-line" role="status" aria-label="Loading the next charge…" />
          )}
        </dd>
        {scheduled ? (
          <>
            <dt>Scheduled change</dt>
            <dd>
              Changes to {scheduled.plan_name} ({scheduled.interval === "year" ? "annual" : "monthly"}) on {formatDate(scheduled.effective_at)}
            </dd>
          </>
        ) : null}
        <dt>Card on file</dt>
        <dd>
          {card.data ? describeCard(card.data) : card.data === null ? "None" : card.isError ? <span className="muted">Not available right now.</span> : "…"}
        </dd>
      </dl>
      {canManageBilling(role) ? (
        <div className="card-actions">
          <button type="button" className="button secondary" disabled={portal.isPending} onClick={() => portal.mutate(organizationId)}>
            {portal.isPending ? "Opening the billing portal…" : card.data ? "Update card" : "Add a card"}
          </button>
          {portal.isError ? <p role="alert" className="field-error">{errorMessage(portal.error)}</p> : null}
        </div>
      ) : null}
    </div>
  );
}
