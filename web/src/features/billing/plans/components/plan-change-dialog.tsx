import { useEffect, useId, useRef } from "react";
import { ErrorState, Skeleton } from "@/components/status";
import { BillingApiError, errorMessage } from "@/lib/errors";
import { formatCredits, formatDate, formatMoney } from "@/lib/format";
import type { BillingInterval, SubscriptionPlan } from "@/types/billing";
import { useChangePlan, type PlanChangeResult } from "../api/change-plan";
import { useOpenCustomerPortal } from "../api/open-customer-portal";
import { usePlanChangePreview, type PlanChangePreview } from "../api/preview-plan-change";
import { intervalWord } from "../awaited-change";

/**
 * The confirmation for a plan or interval switch: what Stripe will do, previewed by the billing
 * function (an upgrade is charged and credited now; anything else is scheduled for the end of
 * the period), and Confirm, which sends the preview's proration date so the charge is the one
 * shown. A modal `<dialog>`: focus stays inside, Escape closes it.
 */
export function PlanChangeDialog({
  organizationId,
  plan,
  interval,
  onClose,
  onChanged,
}: {
  organizationId: string;
  plan: SubscriptionPlan;
  interval: BillingInterval;
  onClose: () => void;
  onChanged: (result: PlanChangeResult, preview: PlanChangePreview) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const preview = usePlanChangePreview(organizationId, { plan_code: plan.code, interval });
  const change = useChangePlan();
  const portal = useOpenCustomerPortal();
  const target = `${plan.name} (${intervalWord(interval)})`;

  useEffect(() => {
    const element = dialog.current;
    if (!element || element.open) return;
    // showModal puts the dialog in the top layer and makes the page behind it inert; an
    // environment without it (jsdom) still gets an open dialog.
    if (typeof element.showModal === "function") element.showModal();
    else element.setAttribute("open", "");
  }, []);

  const declined = change.error instanceof BillingApiError && change.error.code === "card_declined";

  // Closing through the element fires its close event (onClose); without dialog support, close directly.
  function close() {
    const element = dialog.current;
    if (element && typeof element.close === "function") element.close();
    else onClose();
  }

  function confirm(previewed: PlanChangePreview) {
    change.mutate(
      { organization_id: organizationId, plan_code: plan.code, interval, proration_date: previewed.proration_date },
      { onSuccess: (result) => onChanged(result, previewed) },
    );
  }

  return (
    <dialog ref={dialog} className="dialog" aria-labelledby={titleId} onClose={onClose}>
      <h2 id={titleId}>Switch to {target}</h2>
      {preview.isPending ? <Skeleton label="Working out what changes…" lines={4} /> : null}
      {preview.isError ? <ErrorState title="The change could not be previewed." error={preview.error} onRetry={() => void preview.refetch()} /> : null}
      {preview.data ? <PreviewFacts preview={preview.data} target={target} /> : null}
      {declined ? (
        <div className="notice" role="alert">
          <p>
            <strong>Your card was declined.</strong> Nothing was charged and your plan has not changed. Update your card in the
            billing portal, then try again.
          </p>
          <button type="button" className="button" disabled={portal.isPending} onClick={() => portal.mutate(organizationId)}>
            {portal.isPending ? "Opening the billing portal…" : "Update card"}
          </button>
          {portal.isError ? <p className="field-error">{errorMessage(portal.error)}</p> : null}
        </div>
      ) : change.isError ? (
        <p role="alert" className="field-error">
          {errorMessage(change.error)}
        </p>
      ) : null}
      <div className="dialog-actions">
        <button type="button" className="button secondary" onClick={close}>
          Cancel
        </button>
        {preview.data ? (
          <button type="button" className="button" disabled={change.isPending} onClick={() => confirm(preview.data)}>
            {change.isPending
              ? "Switching…"
              : preview.data.kind === "upgrade"
                ? `Pay ${formatMoney(preview.data.amount_due_now, preview.data.currency)} and switch`
                : "Schedule the change"}
          </button>
        ) : null}
      </div>
    </dialog>
  );
}

function PreviewFacts({ preview, target }: { preview: PlanChangePreview; target: string }) {
  const nextCharge = preview.next_charge ? (
    <>
      <dt>Next charge</dt>
      <dd>
        {formatMoney(preview.next_charge.amount, preview.currency)} on {formatDate(preview.next_charge.date)}
      </dd>
    </>
  ) : null;
  if (preview.kind === "scheduled") {
    return (
      <div className="stack">
        <p>
          Changes to {target} on {formatDate(preview.effective_at)}, nothing charged now, this period's credits are kept.
        </p>
        {nextCharge ? <dl className="facts">{nextCharge}</dl> : null}
      </div>
    );
  }
  return (
    <div className="stack">
      <p>The switch takes effect now; you pay the difference for the rest of this period.</p>
      <dl className="facts">
        <dt>Charged now</dt>
        <dd>{formatMoney(preview.amount_due_now, preview.currency)}</dd>
        <dt>Credits added now</dt>
        <dd>{formatCredits(preview.credits_now)}</dd>
        {nextCharge}
      </dl>
      {preview.lines.length > 0 ? (
        <details>
          <summary>What the charge is made of</summary>
          <ul className="preview-lines">
            {preview.lines.map((line, index) => (
              <li key={index}>
                <span>{line.description ?? "Adjustment"}</span> <span className="num">{formatMoney(line.amount, preview.currency)}</span>
              </li>
            ))}
          </ul>
        </details>
      ) : null}
    </div>
  );
}
