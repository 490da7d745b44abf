/**
 * The local mail catcher (what Supabase's local stack runs as Inbucket/Mailpit): every email
 * the product sends under `npm start` lands here instead of in a real inbox. Built from
 * maildev (SMTP server + web UI + REST API at `/api/email`), in this process, so stopping the
 * stack stops it.
 */
import { mkdir } from "node:fs/promises";
import { MailDev } from "maildev";

export interface MailCatcherOptions {
  /** Web UI and REST API port (54324 under `npm start`). */
  uiPort: number;
  /** SMTP port (54325 under `npm start`); SMTP_URL points here. */
  smtpPort: number;
  /** Where received emails are kept as .eml files. */
  directory: string;
}

export interface MailCatcher {
  /** The web UI; its REST API is under `/api` (`GET /api/email` lists every email). */
  url: string;
  /** What SMTP_URL is set to for the functions. */
  smtpUrl: string;
  stop(): Promise<void>;
}

export async function startMailCatcher(options: MailCatcherOptions): Promise<MailCatcher> {
  await mkdir(options.directory, { recursive: true });
  const maildev = new MailDev({
    smtp: options.smtpPort,
    web: options.uiPort,
    // Loopback only: the catcher accepts any mail and shows it to anyone who can reach it.
    ip: "127.0.0.1",
    webIp: "127.0.0.1",
    mailDirectory: options.directory,
    silent: true,
  });
  await maildev.start();
  return {
    url: `http://127.0.0.1:${options.uiPort}`,
    smtpUrl: `smtp://127.0.0.1:${options.smtpPort}`,
    stop: () => maildev.stop(),
  };
}
