import { useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useEffect, useState } from "react";
import { ConnectionBanner } from "@/components/connection-banner";
import { EmptyState, ErrorState, Loading, Skeleton } from "@/components/status";
import { AuthScreen } from "@/features/auth/components/auth-screen";
import { BillingPage } from "@/features/billing/components/billing-page";
import { useMemberships } from "@/features/organizations/api/get-memberships";
import { CreateOrganizationForm, OrganizationSwitcher } from "@/features/organizations/components/organization-picker";
import { signOut, useAuth } from "@/lib/auth";
import { errorMessage, isServiceUnreachable } from "@/lib/errors";
import { useBackend } from "@/lib/supabase";

const SELECTED_KEY = "billing.selectedOrganization";

// The operator console is a chunk of its own: members never download it.
const OperatorConsole = lazy(() => import("@/features/operator/components/operator-console"));

/** The operator console lives at /operator (and below); everything else is the members' dashboard. */
function isOperatorPath(pathname: string): boolean {
  return /^\/operator(\/|$)/.test(pathname);
}

function SignedIn({ userId, email }: { userId: string; email: string }) {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  const memberships = useMemberships(userId);
  const [selectedId, setSelectedId] = useState<string | null>(() => window.localStorage.getItem(SELECTED_KEY));
  const [signOutError, setSignOutError] = useState<unknown>(null);

  const list = memberships.data ?? [];
  const selected = list.find((m) => m.organization.id === selectedId) ?? list[0] ?? null;

  useEffect(() => {
    if (selected) window.localStorage.setItem(SELECTED_KEY, selected.organization.id);
  }, [selected]);

  async function doSignOut() {
    try {
      await signOut(supabase);
      queryClient.clear();
    } catch (error) {
      setSignOutError(error);
    }
  }

  return (
    <>
      <header className="topbar">
        <span className="brand">Billing</span>
        {selected ? <OrganizationSwitcher memberships={list} selectedId={selected.organization.id} onSelect={setSelectedId} /> : null}
        <span className="user">
          <span className="muted">{email}</span>{" "}
          <button type="button" className="button secondary" onClick={() => void doSignOut()}>
            Sign out
          </button>
        </span>
      </header>
      {signOutError ? <p role="alert" className="field-error">{errorMessage(signOutError)}</p> : null}
      <main className="content">
        <ConnectionBanner />
        {memberships.data === undefined && (memberships.isPending || isServiceUnreachable(memberships.error)) ? (
          // With the service unreachable the banner above says so; nothing here may suggest the member has no organization.
          <Skeleton label="Loading your organizations…" lines={4} tall />
        ) : memberships.data === undefined ? (
          <ErrorState title="Your organizations could not be loaded." error={memberships.error} onRetry={() => void memberships.refetch()} />
        ) : selected ? (
          <BillingPage key={selected.organization.id} organizationId={selected.organization.id} role={selected.role} />
        ) : (
          <EmptyState>
            <h1>Welcome</h1>
            <p>You are not in any organization yet. Create one to see its billing; you will be its owner.</p>
          </EmptyState>
        )}
        {/* Only once the list has loaded: a failed read is not "no organizations". */}
        {memberships.data !== undefined ? (
          <details className="card create-org" open={list.length === 0}>
            <summary>{list.length === 0 ? "Create an organization" : "Create another organization"}</summary>
            <CreateOrganizationForm onCreated={setSelectedId} />
          </details>
        ) : null}
      </main>
    </>
  );
}

/**
 * Signed out: the auth screen; signed in: organization switcher and the Billing page, or the
 * operator console at /operator.
 */
export function AppShell() {
  const { isLoading, user } = useAuth();
  if (isLoading) return <Loading label="Restoring your session…" />;
  if (!user) return <AuthScreen />;
  if (isOperatorPath(window.location.pathname)) {
    return (
      <Suspense fallback={<Loading label="Loading the operator console…" />}>
        <OperatorConsole key={user.id} userId={user.id} email={user.email ?? ""} />
      </Suspense>
    );
  }
  return <SignedIn key={user.id} userId={user.id} email={user.email ?? ""} />;
}
