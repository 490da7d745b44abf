/**
 * What the browser suites need around Playwright: where the stack is, Debian's Chromium,
 * screenshots, and the calls a member's own service would make to the billing API.
 *
 * `npm test` passes the stack it started in TEST_* variables. Run alone, the suite reads
 * the `.env` that `npm start` writes (`.local/.env`, or LOCAL_STATE_DIR's), so it can be
 * pointed at the dev stack: `npm run test:e2e -w web`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import { parseEnv } from "node:util";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface StackUrls {
  appUrl: string;
  supabaseUrl: string;
  anonKey: string;
  stripeApiBase: string;
}

function readDotEnv(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  return parseEnv(readFileSync(file, "utf8")) as Record<string, string>;
}

/** The stack under test, from TEST_* (npm test) or from `npm start`'s .env; fails naming what is missing. */
export function stackUnderTest(): StackUrls {
  const stateDir = path.resolve(repoRoot, process.env.LOCAL_STATE_DIR || ".local");
  const dotEnv = readDotEnv(path.join(stateDir, ".env"));
  const pick = (testName: string, envName: string): string => {
    const value = process.env[testName] || dotEnv[envName];
    if (!value) {
      throw new Error(
        `${testName} is not set and ${path.join(stateDir, ".env")} has no ${envName}: run this suite through \`npm test\`, ` +
          "or start the stack with `npm start` first.",
      );
    }
    return value.replace(/\/+$/, "");
  };
  return {
    appUrl: pick("TEST_APP_URL", "APP_URL"),
    supabaseUrl: pick("TEST_SUPABASE_URL", "SUPABASE_URL"),
    anonKey: pick("TEST_SUPABASE_ANON_KEY", "SUPABASE_ANON_KEY"),
    stripeApiBase: pick("TEST_STRIPE_API_BASE", "STRIPE_API_BASE"),
  };
}

/**
 * The service role key of the stack under test, for setting up what only the platform may
 * (appointing an operator): TEST_SUPABASE_SERVICE_ROLE_KEY (npm test) or `npm start`'s .env.
 */
export function serviceRoleKeyUnderTest(): string {
  const stateDir = path.resolve(repoRoot, process.env.LOCAL_STATE_DIR || ".local");
  const key = process.env.TEST_SUPABASE_SERVICE_ROLE_KEY || readDotEnv(path.join(stateDir, ".env")).SUPABASE_SERVICE_ROLE_KEY;
  if (!key) throw new Error("TEST_SUPABASE_SERVICE_ROLE_KEY is not set and npm start's .env has no SUPABASE_SERVICE_ROLE_KEY.");
  return key;
}

/** Debian's Chromium (apt package `chromium`); `npx playwright install` cannot work here. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Flags for Chromium in a container: no sandbox (CI runs as root), no GPU, no network chatter of its own. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Starts Chromium. Missing Chromium is a failure, not a skip: the suite is part of
 * `npm test`'s promise that the dashboard works in a browser.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium was not found at ${CHROMIUM_PATH}, so the browser tests cannot run. Install Debian's package ` +
        "(`apt-get install -y chromium`, as .ci/run does) or set CHROMIUM_PATH to a Chromium binary.",
    );
  }
  // Playwright gives each launch a fresh temporary profile and removes it on close.
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

/** Desktop and phone viewports used for the screenshots. */
export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

/**
 * Where screenshots go: SCREENSHOTS_DIR (relative to the directory npm was run from), or a
 * fresh temporary directory. `SCREENSHOTS_DIR=docs/screenshots` refreshes the README's copies.
 */
export function screenshotsDir(): string {
  const configured = process.env.SCREENSHOTS_DIR;
  const dir = configured
    ? path.resolve(process.env.INIT_CWD || process.cwd(), configured)
    : mkdtempSync(path.join(os.tmpdir(), "billing-screenshots-"));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** What every browser suite shares: the stack, one Chromium for the file, and full-page screenshots. */
export interface BrowserSuite {
  readonly stack: StackUrls;
  readonly browser: Browser;
  /** Writes `${name}.png`, the whole page, into the screenshots directory. */
  screenshot(page: Page, name: string): Promise<void>;
}

/**
 * Registers the file's before() (stack, Chromium, screenshots directory) and after() (closes
 * Chromium) and hands back what they set. Call it once at the top of a suite file; anything else
 * the file needs (a service role key) goes in its own before(), which runs after this one.
 * `announceScreenshots` logs where the screenshots went, for the suite whose pictures people look for.
 */
export function browserSuite(options: { announceScreenshots?: boolean } = {}): BrowserSuite {
  let stack: StackUrls | undefined;
  let browser: Browser | undefined;
  let shotsDir: string | undefined;

  before(async () => {
    stack = stackUnderTest();
    browser = await launchChromium();
    shotsDir = screenshotsDir();
  });

  after(async () => {
    await browser?.close();
    if (options.announceScreenshots && shotsDir) console.log(`Screenshots in ${shotsDir}`);
  });

  // Read at module level the values would still be undefined; say so rather than fail later on `undefined.appUrl`.
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} before browserSuite()'s before() hook ran: use it inside a test or a hook.`);
    return value;
  };

  return {
    get stack() {
      return ready(stack, "suite.stack was read");
    },
    get browser() {
      return ready(browser, "suite.browser was read");
    },
    async screenshot(page, name) {
      await page.screenshot({ path: path.join(ready(shotsDir, "suite.screenshot() was called"), `${name}.png`), fullPage: true });
    },
  };
}

/** How far the page scrolls sideways (0 when it fits). */
export function sidewaysOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** Waits for the element that shows the expected state; webhook-driven states get a longer `timeoutMs`. */
export async function shows(locator: Locator, timeoutMs = 15_000): Promise<void> {
  await locator.waitFor({ state: "visible", timeout: timeoutMs });
}

/** The signed-in user's access token, from where supabase-js keeps the session. */
export async function accessToken(page: Page): Promise<string> {
  const token = await page.evaluate(() => {
    for (let i = 0; i < window.localStorage.length; i += 1) {
      const key = window.localStorage.key(i) ?? "";
      if (key.startsWith("sb-") && key.endsWith("-auth-token")) {
        const session = JSON.parse(window.localStorage.getItem(key) ?? "{}") as { access_token?: string };
        if (session.access_token) return session.access_token;
      }
    }
    return null;
  });
  if (!token) throw new Error("No supabase-js session in the page's localStorage: is the user signed in?");
  return token;
}

/** Calls the billing API as the member's own service would, with the member's access token. */
export async function billingApi(
  stack: StackUrls,
  token: string,
  method: "GET" | "POST",
  route: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${stack.supabaseUrl}/functions/v1/billing${route}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      apikey: stack.anonKey,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/**
 * A PostgREST RPC as `token` (a member's access token or the service role key), as the suites
 * set up their data; throws with the status and body when refused, and returns null for no content.
 */
export async function callRpc(stack: StackUrls, token: string, fn: string, args: Record<string, unknown>): Promise<unknown> {
  const response = await fetch(`${stack.supabaseUrl}/rest/v1/rpc/${fn}`, {
    method: "POST",
    headers: { apikey: stack.anonKey, authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(args),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${fn} answered ${response.status}: ${text}`);
  return text === "" ? null : JSON.parse(text);
}
