/**
 * Root of every billing query key of one organization: invalidating it refreshes the whole
 * Billing page (used when a checkout's webhook has landed). Each API module extends it.
 */
export const billingKey = (organizationId: string) => ["billing", organizationId] as const;
