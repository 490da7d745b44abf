import { useId, useState, type FormEvent } from "react";
import { errorMessage } from "@/lib/errors";
import { formatCreditDelta } from "@/lib/format";
import { useAdjustCredits } from "../api/adjust-credits";

/**
 * A manual adjustment: a signed amount (positive grants, negative debits), the source, an
 * expiry for granted subscription credits, and a required reason, which the ledger keeps with
 * the operator's id.
 */
export function AdjustCreditsForm({ organizationId }: { organizationId: string }) {
  const id = useId();
  const adjust = useAdjustCredits();
  const [amount, setAmount] = useState("");
  const [source, setSource] = useState<"purchased" | "subscription">("purchased");
  const [expiresOn, setExpiresOn] = useState("");
  const [reason, setReason] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const parsed = Number(amount);
  const needsExpiry = source === "subscription" && parsed > 0;

  function submit(event: FormEvent) {
    event.preventDefault();
    setDone(null);
    if (!Number.isInteger(parsed) || parsed === 0 || Math.abs(parsed) > 2_147_483_647) {
      setProblem("Enter a whole number of credits other than 0: positive to grant, negative to debit.");
      return;
    }
    if (reason.trim() === "") {
      setProblem("Say why: the reason is recorded in the ledger.");
      return;
    }
    if (needsExpiry && !expiresOn) {
      setProblem("Subscription credits need an expiry date.");
      return;
    }
    setProblem(null);
    adjust.mutate(
      {
        organizationId,
        amount: parsed,
        source,
        reason: reason.trim(),
        expiresAt: needsExpiry ? new Date(`${expiresOn}T00:00:00Z`).toISOString() : null,
      },
      {
        onSuccess: () => {
          setDone(`Adjusted by ${formatCreditDelta(parsed)} ${source} credits.`);
          setAmount("");
          setReason("");
        },
      },
    );
  }

  return (
    <form className="stack op-adjust" onSubmit={submit} aria-labelledby={`${id}-heading`} noValidate>
      <h3 id={`${id}-heading`}>Adjust credits</h3>
      <div className="inline-form">
        <label htmlFor={`${id}-amount`}>Amount</label>
        <input id={`${id}-amount`} inputMode="numeric" value={amount} onChange={(e) => setAmount(e.target.value)} placeholder="e.g. 500 or -200" aria-describedby={`${id}-amount-hint`} />
        <label htmlFor={`${id}-source`}>Source</label>
        <select id={`${id}-source`} value={source} onChange={(e) => setSource(e.target.value as "purchased" | "subscription")}>
          <option value="purchased">Purchased (never expire)</option>
          <option value="subscription">Subscription (expire)</option>
        </select>
        {needsExpiry ? (
          <>
            <label htmlFor={`${id}-expires`}>Expires on</label>
            <input id={`${id}-expires`} type="date" value={expiresOn} onChange={(e) => setExpiresOn(e.target.value)} />
          </>
        ) : null}
        <p id={`${id}-amount-hint`} className="hint muted">Positive grants credits; negative debits them (never below zero).</p>
      </div>
      <div className="inline-form">
        <label htmlFor={`${id}-reason`}>Reason</label>
        <input id={`${id}-reason`} className="op-reason" value={reason} maxLength={500} onChange={(e) => setReason(e.target.value)} required />
        <button type="submit" className="button" disabled={adjust.isPending}>
          {adjust.isPending ? "Adjusting…" : "Adjust"}
        </button>
      </div>
      {problem ? <p role="alert" className="field-error">{problem}</p> : null}
      {adjust.isError ? <p role="alert" className="field-error">{errorMessage(adjust.error)}</p> : null}
      {done ? <p role="status">{done}</p> : null}
    </form>
  );
}
