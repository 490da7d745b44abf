import type { ReactNode } from "react";
import { errorMessage, isServiceUnreachable } from "@/lib/errors";

/** A loading placeholder announced politely to screen readers. */
export function Loading({ label }: { label: string }) {
  return (
    <p className="status status-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {label}
    </p>
  );
}

/** An error with its message and a way to try again. */
export function ErrorState({ title, error, onRetry }: { title: string; error: unknown; onRetry?: () => void }) {
  return (
    <div className="status status-error" role="alert">
      <p>
        <strong>{title}</strong> {errorMessage(error)}
      </p>
      {onRetry ? (
        <button type="button" className="button secondary" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

/** Nothing to show yet, said plainly, with an optional next step. */
export function EmptyState({ children }: { children: ReactNode }) {
  return <div className="status status-empty">{children}</div>;
}

/** Pager for lists fetched with `range` + exact counts. */
export function Pager({
  page,
  pageSize,
  total,
  onPage,
  label,
}: {
  page: number;
  pageSize: number;
  total: number;
  onPage: (page: number) => void;
  label: string;
}) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" className="button secondary" disabled={page <= 0} onClick={() => onPage(page - 1)}>
        Previous
      </button>
      <span aria-live="polite">
        Page {page + 1} of {pages}
      </span>
      <button type="button" className="button secondary" disabled={page + 1 >= pages} onClick={() => onPage(page + 1)}>
        Next
      </button>
    </nav>
  );
}

/**
 * A placeholder at roughly the size of what is loading, so a card keeps its height when its
 * figures arrive. Announced once as `label`; the grey lines are hidden from screen readers.
 */
export function Skeleton({ label, lines = 3, tall = false }: { label: string; lines?: number; tall?: boolean }) {
  return (
    <div className="skeleton" role="status" aria-live="polite">
      <span className="visually-hidden">{label}</span>
      {tall ? <span className="skeleton-line tall" aria-hidden="true" /> : null}
      {Array.from({ length: lines }, (_, i) => (
        <span key={i} className={`skeleton-line${i === lines - 1 ? " short" : ""}`} aria-hidden="true" />
      ))}
    </div>
  );
}

/** The parts of a TanStack Query result QueryView reads. */
export interface QueryLike<T> {
  data: T | undefined;
  error: unknown;
  isError: boolean;
  dataUpdatedAt: number;
  refetch: () => unknown;
}

/**
 * One card's figures through loading, outage and error. Figures already shown stay when a
 * refresh fails, marked as not current (the ConnectionBanner at the top says why, once, and
 * retries); a card that never loaded waits under that banner instead of printing the network
 * error; any other error shows with Try again.
 */
export function QueryView<T>({
  query,
  loading,
  errorTitle,
  children,
}: {
  query: QueryLike<T>;
  loading: ReactNode;
  errorTitle: string;
  children: (data: T) => ReactNode;
}) {
  if (query.data !== undefined) {
    if (!query.isError) return <>{children(query.data)}</>;
    return (
      <div className="stale">
        <p className="stale-note">
          Not current: last updated {new Date(query.dataUpdatedAt).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })}.
        </p>
        {children(query.data)}
      </div>
    );
  }
  if (query.isError && !isServiceUnreachable(query.error)) {
    return <ErrorState title={errorTitle} error={query.error} onRetry={() => void query.refetch()} />;
  }
  return <>{loading}</>;
}
