/** The alert email: what owners and admins read, in plain text and HTML. */

/** What the outbox row holds about the alert (written by the database trigger). */
export interface AlertEmailContent {
  organization_id: string;
  organization_name: string | null;
  alert_id: string;
  kind: string;
  severity: "warning" | "critical" | string;
  title: string;
  message: string;
}

export interface ComposedEmail {
  subject: string;
  text: string;
  html: string;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** Composes the email for one alert; the link opens the dashboard on the organization. */
export function composeAlertEmail(content: AlertEmailContent, appUrl: string): ComposedEmail {
  const organization = content.organization_name || "your organization";
  const link = new URL("/", appUrl).toString();
  const label = content.severity === "critical" ? "Action needed" : "Heads up";
  const subject = `[${organization}] ${content.title}`;
  const text = [
    `${label}: ${content.title}`,
    "",
    ...(content.message ? [content.message, ""] : []),
    `Organization: ${organization}`,
    `Open the billing dashboard: ${link}`,
    "",
    "You receive this because you are an owner or admin of the organization.",
  ].join("\n");
  const color = content.severity === "critical" ? "#b42318" : "#b54708";
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#101828;max-width:560px">
<p style="color:${color};font-weight:600;text-transform:uppercase;font-size:12px;letter-spacing:.05em">${escapeHtml(label)} · ${
    escapeHtml(content.severity)
  }</p>
<h1 style="font-size:20px;margin:0 0 12px">${escapeHtml(content.title)}</h1>
${content.message ? `<p>${escapeHtml(content.message)}</p>` : ""}
<p>Organization: <strong>${escapeHtml(organization)}</strong></p>
<p><a href="${escapeHtml(link)}" style="display:inline-block;background:#1d2939;color:#fff;padding:10px 16px;border-radius:6px;text-decoration:none">Open the billing dashboard</a></p>
<p style="color:#667085;font-size:12px">You receive this because you are an owner or admin of the organization.</p>
</body></html>`;
  return { subject, text, html };
}
