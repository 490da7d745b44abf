import { useId, useState, type FormEvent } from "react";
import { ErrorState, Skeleton } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatCredits, formatDateUtc } from "@/lib/format";
import { canManageBilling } from "@/lib/roles";
import type { OrganizationRole, SpendLimit } from "@/types/billing";
import { useSetSpendLimit, useSpendLimit } from "../api/spend-limit";

/** The first day of the next UTC month: when this month's consumption starts again from zero. */
function nextMonthStart(monthStart: string): string {
  const start = new Date(`${monthStart}T00:00:00Z`);
  return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1)).toISOString();
}

/** This month's consumption (and live reservations) against the limit, as a meter and in words. */
function SpendMeter({ limit }: { limit: SpendLimit }) {
  const meterId = useId();
  const used = limit.consumed_this_month + limit.reserved;
  const resets = formatDateUtc(nextMonthStart(limit.month_start));
  const reservedNote = limit.reserved > 0 ? ` (${formatCredits(limit.reserved)} of it reserved)` : "";
  if (limit.monthly_credits === null) {
    return (
      <p>
        No monthly limit. {formatCredits(used)} used this month{reservedNote}.
      </p>
    );
  }
  const cap = limit.monthly_credits;
  const reached = (limit.remaining ?? 0) <= 0;
  return (
    <div className="stack">
      <label htmlFor={meterId}>Used this month</label>
      <meter id={meterId} className="spend-meter" min={0} max={Math.max(cap, 1)} low={cap * 0.8} high={cap * 0.95} optimum={0} value={Math.min(used, cap)}>
        {formatCredits(used)} of {formatCredits(cap)}
      </meter>
      <p>
        {formatCredits(used)} of {formatCredits(cap)} used this month{reservedNote}; {formatCredits(limit.remaining ?? 0)} left until {resets} (UTC).
      </p>
      {reached ? (
        <p className="notice" role="note">
          The limit is reached: consumption and reservations are refused until {resets} or until an owner or admin raises the limit.
        </p>
      ) : null}
    </div>
  );
}

function SpendLimitForm({ organizationId, current }: { organizationId: string; current: number | null }) {
  const save = useSetSpendLimit(organizationId);
  const [draft, setDraft] = useState<string | null>(null);
  const inputId = useId();
  const hintId = `${inputId}-hint`;
  const value = draft ?? (current === null ? "" : String(current));
  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate(Number(value), { onSuccess: () => setDraft(null) });
  }
  return (
    <form className="inline-form" onSubmit={submit}>
      <label htmlFor={inputId}>Monthly spend limit (credits)</label>
      <input
        id={inputId}
        type="number"
        min={0}
        step={1}
        required
        inputMode="numeric"
        aria-describedby={hintId}
        value={value}
        onChange={(e) => setDraft(e.target.value)}
      />
      <button type="submit" className="button" disabled={save.isPending || value === "" || Number(value) === current}>
        {save.isPending && save.variables !== null ? "Saving…" : "Save limit"}
      </button>
      {current !== null ? (
        <button
          type="button"
          className="button secondary"
          disabled={save.isPending}
          onClick={() => save.mutate(null, { onSuccess: () => setDraft(null) })}
        >
          {save.isPending && save.variables === null ? "Removing…" : "Remove limit"}
        </button>
      ) : null}
      <p id={hintId} className="muted hint">
        Per calendar month (UTC). Consumption, batch events and reservations that would go past it are refused; reserved
        credits count.
      </p>
      {save.isSuccess && draft === null ? <p role="status">Saved.</p> : null}
      {save.isError ? <p role="alert" className="field-error">{errorMessage(save.error)}</p> : null}
    </form>
  );
}

/** Monthly spend limit: everyone sees this month's use of it; owners and admins set or remove it. */
export function SpendLimitCard({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  const limit = useSpendLimit(organizationId);
  if (limit.isPending) return <Skeleton label="Loading spend limit…" lines={4} />;
  if (limit.isError) {
    return <ErrorState title="The spend limit could not be loaded." error={limit.error} onRetry={() => void limit.refetch()} />;
  }
  return (
    <div className="stack">
      <SpendMeter limit={limit.data} />
      {canManageBilling(role) ? (
        <SpendLimitForm organizationId={organizationId} current={limit.data.monthly_credits} />
      ) : null}
    </div>
  );
}
