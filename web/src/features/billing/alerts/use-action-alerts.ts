import { LIVE_REFRESH_MS } from "@/lib/query-client";
import { useCreditBalance } from "../api/get-credit-balance";
import { useSubscription } from "../api/get-subscription";
import { useAutoTopUp, useCardOnFile } from "../credits/api/auto-top-up";
import { useThreshold } from "../credits/api/low-balance-threshold";
import { useSpendLimit } from "../credits/api/spend-limit";
import { useAlerts } from "../overview/api/get-alerts";
import { actionAlerts, type ActionAlert } from "./action-alerts";

/**
 * The banners that need action now, from the figures as they are read. The banners at the top
 * and the Overview's alert list both call it (the reads are shared through the query cache),
 * so the list knows which stored alerts a banner already shows.
 */
export function useActionAlerts(organizationId: string): ActionAlert[] {
  // Re-read like the balance: a renewal can fail while the page is open, and the banner should say so.
  const subscription = useSubscription(organizationId, LIVE_REFRESH_MS);
  const balance = useCreditBalance(organizationId);
  const threshold = useThreshold(organizationId);
  const openAlerts = useAlerts(organizationId);
  const spendLimit = useSpendLimit(organizationId);
  const autoTopUp = useAutoTopUp(organizationId);
  const card = useCardOnFile(organizationId);
  return actionAlerts({
    subscription: subscription.data,
    balance: balance.data,
    threshold: threshold.data,
    alerts: openAlerts.data,
    spendLimit: spendLimit.data,
    autoTopUpEnabled: autoTopUp.isSuccess ? (autoTopUp.data?.enabled ?? null) : undefined,
    hasCardOnFile: card.isSuccess ? card.data !== null : undefined,
  });
}
