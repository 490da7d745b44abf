import { useQueryClient } from "@tanstack/react-query";
import { useRef, useState, type KeyboardEvent } from "react";
import { ErrorState, Loading } from "@/components/status";
import { signOut } from "@/lib/auth";
import { errorMessage } from "@/lib/errors";
import { formatDateTime } from "@/lib/format";
import { useBackend } from "@/lib/supabase";
import { useIsOperator } from "../api/is-operator";
import { useDismissOperatorAlert, useOperatorAlerts } from "../api/operator-alerts";
import { OperationsPanel } from "./operations-panel";
import { OrganizationsPanel } from "./organizations-panel";
import { OverviewPanel } from "./overview-panel";
import { PeriodPicker, presetPeriod, type PeriodChoice } from "./period-picker";
import "../operator.css";
import { tabForKey } from "@/lib/tab-keys";

const TABS = [
  { id: "overview", label: "Overview" },
  { id: "organizations", label: "Organizations" },
  { id: "operations", label: "Operations" },
] as const;
type TabId = (typeof TABS)[number]["id"];

function OperatorAlerts() {
  const alerts = useOperatorAlerts();
  const dismiss = useDismissOperatorAlert();
  if (!alerts.data?.length) return null;
  return (
    <ul className="alerts op-alerts" aria-label="Operator alerts">
      {alerts.data.map((a) => (
        <li key={a.id} className={`alert alert-${a.severity}`}>
          <span><strong>{a.title}</strong> <span className="muted">{formatDateTime(a.created_at)}</span><br />{a.message}</span>
          <button type="button" className="button secondary" onClick={() => dismiss.mutate(a.id)} disabled={dismiss.isPending}>Dismiss</button>
        </li>
      ))}
    </ul>
  );
}

function Console() {
  const [tab, setTab] = useState<TabId>("overview");
  const [choice, setChoice] = useState<PeriodChoice>(() => ({ preset: "30d", period: presetPeriod("30d") }));
  const tabRefs = useRef<Partial<Record<TabId, HTMLButtonElement | null>>>({});

  function select(id: TabId, focus = false) {
    setTab(id);
    if (focus) tabRefs.current[id]?.focus();
  }

  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    const next = tabForKey(event.key, TABS.map((t) => t.id), tab);
    if (next === null) return;
    select(next, true);
    event.preventDefault();
  }

  return (
    <>
      <OperatorAlerts />
      <PeriodPicker value={choice} onChange={setChoice} />
      <div role="tablist" aria-label="Operator console sections" className="tabs" onKeyDown={onKeyDown}>
        {TABS.map((t) => (
          <button
            key={t.id}
            ref={(element) => {
              tabRefs.current[t.id] = element;
            }}
            type="button"
            role="tab"
            id={`op-tab-${t.id}`}
            aria-selected={tab === t.id}
            aria-controls={`op-panel-${t.id}`}
            tabIndex={tab === t.id ? 0 : -1}
            onClick={() => select(t.id)}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`op-panel-${tab}`} aria-labelledby={`op-tab-${tab}`}>
        {tab === "overview" ? <OverviewPanel period={choice.period} /> : null}
        {tab === "organizations" ? <OrganizationsPanel period={choice.period} /> : null}
        {tab === "operations" ? <OperationsPanel period={choice.period} /> : null}
      </div>
    </>
  );
}

/**
 * The operator console at /operator: the business across every organization, one
 * organization at a time, and the operations that keep billing running. The database decides
 * who is an operator; anyone else sees only that this page is not for them.
 */
export default function OperatorConsole({ userId, email }: { userId: string; email: string }) {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  const isOperator = useIsOperator(userId);
  const [signOutError, setSignOutError] = useState<unknown>(null);

  return (
    <>
      <header className="topbar">
        <span className="brand">Billing operator console</span>
        <span className="user">
          <a href="/">Members’ dashboard</a>{" "}
          <span className="muted">{email}</span>{" "}
          <button
            type="button"
            className="button secondary"
            onClick={() =>
              void signOut(supabase).then(() => queryClient.clear(), setSignOutError)}
          >
            Sign out
          </button>
        </span>
      </header>
      {signOutError ? <p role="alert" className="field-error">{errorMessage(signOutError)}</p> : null}
      <main className="content op-console">
        <h1>Operator console</h1>
        {isOperator.isPending ? (
          <Loading label="Checking your access…" />
        ) : isOperator.isError ? (
          <ErrorState title="Your access could not be checked." error={isOperator.error} onRetry={() => void isOperator.refetch()} />
        ) : isOperator.data ? (
          <Console />
        ) : (
          <div className="status status-empty" role="alert">
            <p>This page is for billing operators, and you are not one.</p>
            <p><a href="/">Go to your billing dashboard</a></p>
          </div>
        )}
      </main>
    </>
  );
}
