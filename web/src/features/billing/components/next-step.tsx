import { canManageBilling } from "@/lib/roles";
import type { BillingTabId } from "../tabs/tab-location";
import { TabLink } from "../tabs/tab-link";
import { AskManagers } from "./ask-managers";
import { useBillingViewer } from "./billing-viewer";

export interface NextStepAction {
  tab: BillingTabId;
  /** The id of the section of that tab to bring into view. */
  section?: string;
  label: string;
}

/**
 * The way out of an empty state: owners and admins get the buttons that fix it (Choose a
 * plan → Plans, Buy credits → the packs), members are told whom to ask to `toDo`, by email.
 * Outside a Billing page (no viewer known) it shows nothing extra.
 */
export function NextStep({ actions, toDo }: { actions: readonly NextStepAction[]; toDo: string }) {
  const viewer = useBillingViewer();
  if (!viewer) return null;
  if (canManageBilling(viewer.role)) {
    return (
      <p className="next-step inline-form">
        {actions.map((action, i) => (
          <TabLink key={action.label} tab={action.tab} section={action.section} className={i === 0 ? "button" : "button secondary"}>
            {action.label}
          </TabLink>
        ))}
      </p>
    );
  }
  return (
    <p className="next-step">
      <AskManagers organizationId={viewer.organizationId} toDo={toDo} />
    </p>
  );
}

export const CHOOSE_A_PLAN: NextStepAction = { tab: "plans", label: "Choose a plan" };
export const BUY_CREDITS: NextStepAction = { tab: "credits", section: "buy-credits", label: "Buy credits" };
