/**
 * One-off: screenshots the newest alert email in a running mail catcher's web UI, for the
 * README. Usage (with `npm start` running, after an alert email was sent):
 *   node --import tsx web/e2e/capture-alert-email.ts [mail catcher URL] [output png]
 */
import { launchChromium } from "./support";

const mailUrl = process.argv[2] ?? "http://127.0.0.1:54324";
const output = process.argv[3] ?? "docs/screenshots/alert-email.png";

const emails = (await (await fetch(`${mailUrl}/api/email?sort=desc`)).json()) as { id: string; subject: string }[];
const alert = emails.find((email) => /low|failed|unusual|alert/i.test(email.subject)) ?? emails[0];
if (!alert) throw new Error(`no email in the mail catcher at ${mailUrl}`);

const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${mailUrl}/#/email/${alert.id}`);
  await page.getByText(alert.subject).first().waitFor();
  await page.waitForTimeout(1000);
  await page.screenshot({ path: output });
  console.log(`saved ${output} (${alert.subject})`);
} finally {
  await browser.close();
}
