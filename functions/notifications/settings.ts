/**
 * Where notifications go, read from the environment once. Each channel is optional: without
 * BILLING_WEBHOOK_URL (or without SMTP_URL) its outbox rows stay pending, nothing is lost,
 * and they go out once the setting is made.
 */
export interface NotificationSettings {
  /** The SaaS's endpoint for signed notifications; null when not configured. */
  webhookUrl: string | null;
  /** The Standard Webhooks secret (`whsec_...`); required with webhookUrl. */
  webhookSecret: string | null;
  /** The SMTP server's URL (`smtp://user:pass@host:port`, `smtps://...`); null when not configured. */
  smtpUrl: string | null;
  /** The From address of alert emails; required with smtpUrl. */
  emailFrom: string | null;
  /** The dashboard's address, linked from every email. */
  appUrl: string;
}

function optional(name: string): string | null {
  const value = Deno.env.get(name)?.trim();
  return value ? value : null;
}

/** Reads and checks the settings; a half-configured channel fails loudly rather than silently. */
export function notificationSettings(): NotificationSettings {
  const settings: NotificationSettings = {
    webhookUrl: optional("BILLING_WEBHOOK_URL"),
    webhookSecret: optional("BILLING_WEBHOOK_SECRET"),
    smtpUrl: optional("SMTP_URL"),
    emailFrom: optional("EMAIL_FROM"),
    appUrl: optional("APP_URL") ?? "http://127.0.0.1:5173",
  };
  if (settings.webhookUrl && !settings.webhookSecret?.startsWith("whsec_")) {
    throw new Error("BILLING_WEBHOOK_SECRET must be set to a whsec_... secret when BILLING_WEBHOOK_URL is set");
  }
  if (settings.smtpUrl && !settings.emailFrom) {
    throw new Error("EMAIL_FROM must be set when SMTP_URL is set");
  }
  return settings;
}
