import { fireEvent, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { json, renderWithBackend, type FakeHandler } from "@/test/fake-backend";
import { ORG, transaction } from "@/test/fixtures";
import { textContent } from "@/test/text-content";
import type { CreditTransaction, OrganizationRole } from "@/types/billing";
import { BillingViewerProvider } from "../../components/billing-viewer";
import CreditsTab from "./credits-tab";

const balance = { total: 1475, purchased: 500, subscription: 975, next_expiry_at: "2026-12-01T00:00:00Z", expiring_amount: 975, reserved: 40 };
const spendLimit = { monthly_credits: null, month_start: "2026-12-01", consumed_this_month: 0, reserved: 40, remaining: null };
const product = {
  id: "p1", code: "credits_1000", name: "1,000 credits", description: "", credits: 1000, currency: "usd", unit_amount: 1000,
  is_active: true, sort_order: 10, stripe_price_id: null, stripe_product_id: null, created_at: "", updated_at: "",
};
const events = [{ event_key: "api_call_premium", name: "Premium API call" }, { event_key: "ai_inference", name: "AI inference" }];
const managers = [
  { user_id: "u-dana", email: "dana@example.com", role: "owner" },
  { user_id: "u-abe", email: "abe@example.com", role: "admin" },
];

/** 60 premium calls on Nov 22 (newest first), after a 1,000-credit pack bought on Nov 20. */
function sixtyCallsAfterAPack(): CreditTransaction[] {
  const calls = Array.from({ length: 60 }, (_, i) =>
    transaction(100 - i, {
      event_key: "api_call_premium", amount: -5, balance_after: 700 + 5 * i, consumption_id: `c-${i}`,
      created_at: `2026-11-22T12:${String(59 - i).padStart(2, "0")}:00Z`,
    }));
  const pack = transaction(1, {
    kind: "grant", source: "purchased", amount: 1000, balance_after: 1000, event_key: null, reference: "cs_pack",
    description: "credits granted", created_at: "2026-11-20T12:00:00Z",
  });
  return [...calls, pack];
}

function handler(ledger: (url: URL) => Response, extra: FakeHandler = () => undefined): FakeHandler {
  return (request) => {
    const { path, url } = request;
    const answer = extra(request);
    if (answer) return answer;
    if (path === "/rest/v1/rpc/get_credit_balance") return json(balance);
    if (path === "/rest/v1/rpc/get_spend_limit") return json(spendLimit);
    if (path === "/rest/v1/rpc/organization_managers") return json(managers);
    if (path === "/rest/v1/organizations") return json({ low_balance_threshold: 100, credit_precedence: "purchased_first" });
    if (path === "/rest/v1/credit_products") return json([product]);
    if (path === "/rest/v1/credit_events") return json(events);
    if (path === "/rest/v1/billing_history") return json([{ stripe_reference: "cs_pack", description: "1,000 credits" }]);
    if (path === "/rest/v1/credit_transactions") return ledger(url);
    if (path === "/rest/v1/auto_top_up_settings" || path.startsWith("/functions/")) return json(null);
    return undefined;
  };
}

/** The tab as the Billing page renders it, which tells it who is looking. */
function renderTab(role: OrganizationRole, backend: FakeHandler) {
  return renderWithBackend(
    <BillingViewerProvider value={{ organizationId: ORG, role }}>
      <CreditsTab organizationId={ORG} role={role} />
    </BillingViewerProvider>,
    backend,
  );
}

const ledgerCalls = (calls: string[]) => calls.filter((c) => c.startsWith("GET /rest/v1/credit_transactions")).map((c) => decodeURIComponent(c));

describe("Credits tab", () => {
  beforeEach(() => {
    // Only Date is faked: "today" is Nov 23, 2026, while promises and timers run as usual.
    vi.useFakeTimers({ toFake: ["Date"], now: new Date("2026-11-23T12:00:00Z") });
    window.history.replaceState(null, "", "/?tab=credits");
  });
  afterEach(() => {
    vi.useRealTimers();
    window.history.replaceState(null, "", "/");
  });

  it("prices each pack per 1,000 credits and shows what the bigger one saves", async () => {
    const bigger = { ...product, id: "p5", code: "credits_5000", name: "5,000 credits", credits: 5000, unit_amount: 4500 };
    renderTab("member", handler(() => json([], { total: 0 }), ({ path }) =>
      path === "/rest/v1/credit_products" ? json([product, bigger]) : undefined));
    const small = (await screen.findByRole("heading", { name: "1,000 credits" })).closest("li")!;
    const large = screen.getByRole("heading", { name: "5,000 credits" }).closest("li")!;
    expect(within(small as HTMLElement).getByText(/per 1,000 credits/)).toHaveTextContent(/^\$10\.00 per 1,000 credits$/);
    expect(within(large as HTMLElement).getByText(/per 1,000 credits/)).toHaveTextContent(/^\$9\.00 per 1,000 credits · save 10%$/);
  });

  it("shows the ledger by day in the catalog's words, 60 identical calls folded into one line that expands", async () => {
    renderTab("owner", handler(() => json(sixtyCallsAfterAPack(), { total: 61 })));
    expect(await screen.findByText(textContent("Balance: 1,475 credits"))).toBeInTheDocument();
    const table = await screen.findByRole("table", { name: /Credit transactions, newest first/ });
    const days = within(table).getAllByRole("rowheader");
    expect(days.map((d) => d.textContent)).toEqual([expect.stringMatching(/Nov 22, 2026 net -300$/), expect.stringMatching(/Nov 20, 2026 net \+1,000$/)]);
    const folded = within(table).getByText("Premium API call × 60").closest("tr")!;
    expect(within(folded).getByText("-300")).toBeInTheDocument();
    expect(within(folded).getByText("700")).toBeInTheDocument();
    expect(within(table).getByText("Bought 1,000 credits")).toBeInTheDocument();
    expect(within(table).queryByText(/api_call_premium|grant/)).not.toBeInTheDocument();
    // Two lines, one page: no pager.
    expect(within(table).getAllByRole("row")).toHaveLength(1 + 2 + 2);
    expect(screen.queryByRole("navigation", { name: "Transaction pages" })).not.toBeInTheDocument();

    await userEvent.click(within(folded).getByRole("button", { name: "Show all 60" }));
    expect(within(table).getAllByRole("row")).toHaveLength(1 + 2 + 2 + 60);
    expect(within(folded).getByRole("button", { name: "Hide all 60" })).toHaveAttribute("aria-expanded", "true");
  });

  it("reads the ledger again when the balance changes, and not while it stays the same", async () => {
    vi.useFakeTimers({ toFake: ["Date", "setInterval", "clearInterval"], now: new Date("2026-11-23T12:00:00Z") });
    let total = balance.total;
    const { calls } = renderTab("owner", handler(() => json(sixtyCallsAfterAPack()), ({ path }) =>
      path === "/rest/v1/rpc/get_credit_balance" ? json({ ...balance, total }) : undefined));
    expect(await screen.findByText("Premium API call × 60")).toBeInTheDocument();
    const balanceReads = () => calls.filter((c) => c.includes("get_credit_balance")).length;
    expect(ledgerCalls(calls)).toHaveLength(1);

    const before = balanceReads();
    await vi.advanceTimersByTimeAsync(10_000);
    await vi.waitFor(() => expect(balanceReads()).toBeGreaterThan(before));
    expect(ledgerCalls(calls)).toHaveLength(1);

    total -= 5;
    await vi.advanceTimersByTimeAsync(10_000);
    await vi.waitFor(() => expect(ledgerCalls(calls)).toHaveLength(2));
  });

  it("asks for the last 30 days by default; presets and dates change the query and the address", async () => {
    const view = renderTab("member", handler(() => json([transaction(1, { created_at: "2026-11-22T12:00:00Z" })], { total: 1 })));
    await screen.findByRole("table", { name: /Credit transactions, newest first/ });
    const first = ledgerCalls(view.calls)[0]!;
    expect(first).toContain(`created_at=gte.${new Date("2026-10-25T00:00:00").toISOString()}`);
    expect(first).toContain(`created_at=lt.${new Date("2026-11-24T00:00:00").toISOString()}`);
    expect(screen.getByRole("button", { name: "30 days" })).toHaveAttribute("aria-pressed", "true");

    await userEvent.click(screen.getByRole("button", { name: "7 days" }));
    expect(window.location.search).toBe("?tab=credits&ledger_days=7");
    await vi.waitFor(() => expect(ledgerCalls(view.calls).some((c) => c.includes(`created_at=gte.${new Date("2026-11-17T00:00:00").toISOString()}`))).toBe(true));

    const from = screen.getByLabelText("From");
    fireEvent.change(from, { target: { value: "2026-11-01" } });
    expect(window.location.search).toBe("?tab=credits&ledger_from=2026-11-01&ledger_to=2026-11-23");
    expect(screen.getByRole("button", { name: "7 days" })).toHaveAttribute("aria-pressed", "false");
  });

  it("opens on the range the address names (a reload keeps it)", async () => {
    window.history.replaceState(null, "", "/?tab=credits&ledger_from=2026-11-01&ledger_to=2026-11-10");
    const view = renderTab("member", handler(() => json([], { total: 0 })));
    expect(await screen.findByText(/No credit transactions in these 10 days\./)).toBeInTheDocument();
    expect(screen.getByLabelText("From")).toHaveValue("2026-11-01");
    expect(screen.getByLabelText("To")).toHaveValue("2026-11-10");
    expect(ledgerCalls(view.calls)[0]).toContain(`created_at=lt.${new Date("2026-11-11T00:00:00").toISOString()}`);
  });

  it("filters by type and, with nothing to show, leads an owner to buying credits", async () => {
    const view = renderTab(
      "owner",
      handler((url) => (url.searchParams.get("kind") === "eq.expiry" ? json([], { total: 0 }) : json([transaction(1, { created_at: "2026-11-22T12:00:00Z" })], { total: 1 }))),
    );
    await screen.findByRole("table", { name: /Credit transactions, newest first/ });
    await userEvent.selectOptions(screen.getByLabelText("Type"), "Expired");
    expect(await screen.findByText(/No “Expired” transactions in these 30 days\./)).toBeInTheDocument();
    expect(view.calls.some((c) => c.includes("kind=eq.expiry"))).toBe(true);
    const buy = screen.getByRole("link", { name: "Buy credits" });
    expect(buy).toHaveAttribute("href", "/?tab=credits#buy-credits");
    expect(screen.getByRole("button", { name: "Show the last 90 days" })).toBeInTheDocument();
  });

  it("downloads the filtered range as CSV, one row per movement", async () => {
    const created: Blob[] = [];
    const createObjectURL = vi.fn((blob: Blob) => {
      created.push(blob);
      return "blob:ledger";
    });
    vi.stubGlobal("URL", Object.assign(URL, { createObjectURL, revokeObjectURL: vi.fn() }));
    const click = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(() => undefined);
    try {
      const view = renderTab("member", handler((url) => {
        const rows = sixtyCallsAfterAPack();
        // The export asks oldest first, from offset 0.
        return url.searchParams.get("order")?.startsWith("created_at.asc") ? json([...rows].reverse()) : json(rows, { total: rows.length });
      }));
      await screen.findByRole("table", { name: /Credit transactions, newest first/ });
      await userEvent.click(screen.getByRole("button", { name: "Download CSV" }));
      expect(await screen.findByText("Downloaded credits-2026-10-25-to-2026-11-23.csv (61 rows).")).toBeInTheDocument();
      const csv = await created[0]!.text();
      const lines = csv.split("\r\n");
      expect(lines[0]).toBe("date,description,amount,balance after,reference");
      expect(lines).toHaveLength(62);
      expect(lines[1]).toBe("2026-11-20T12:00:00Z,\"Bought 1,000 credits\",1000,1000,cs_pack");
      expect(lines[61]).toBe("2026-11-22T12:59:00Z,Premium API call,-5,700,c-0");
      expect(ledgerCalls(view.calls).filter((c) => c.includes("order=created_at.asc"))).toHaveLength(1);
      expect(click).toHaveBeenCalledTimes(1);
    } finally {
      click.mockRestore();
      vi.unstubAllGlobals();
    }
  });

  it("lets an owner change the spending order, saying what it means", async () => {
    let saved: unknown = null;
    let stored = "purchased_first";
    renderTab("owner", handler(() => json([], { total: 0 }), (request) => {
      if (request.path === "/rest/v1/organizations") return json({ low_balance_threshold: 100, credit_precedence: stored });
      if (request.path !== "/rest/v1/rpc/set_credit_precedence") return undefined;
      saved = request.body;
      stored = (request.body as { p_policy: string }).p_policy;
      return new Response(null, { status: 204 });
    }));
    const purchasedFirst = await screen.findByRole("radio", { name: /Purchased credits first \(they never expire\)/ });
    expect(purchasedFirst).toBeChecked();
    const section = document.getElementById("spending-order")!;
    expect(section).toHaveTextContent(/Usage is paid from purchased credits until they run out.*975 subscription credits expire on Dec 1, 2026/);
    await userEvent.click(screen.getByRole("radio", { name: /Expiring credits first \(use subscription credits before they expire\)/ }));
    expect(saved).toEqual({ p_organization_id: ORG, p_policy: "expiring_first" });
    expect(await within(section).findByText("Saved.")).toBeInTheDocument();
    expect(screen.getByRole("radio", { name: /Expiring credits first/ })).toBeChecked();
    expect(section).toHaveTextContent(/Usage is paid from subscription credits first, the soonest to expire first, and purchased credits are kept for later\. 975 subscription credits expire on Dec 1, 2026\./);
  });

  it("lets owners change the threshold and buy packs", async () => {
    let saved: unknown = null;
    const view = renderTab("owner", handler(() => json([], { total: 0 }), (request) => {
      if (request.path !== "/rest/v1/rpc/set_low_balance_threshold") return undefined;
      saved = request.body;
      return new Response(null, { status: 204 });
    }));
    const input = await screen.findByLabelText(/Alert me when the balance falls below/);
    expect(input).toHaveValue(100);
    expect(input).toHaveAccessibleDescription(/0 turns the alert off/);
    await userEvent.clear(input);
    await userEvent.type(input, "250");
    await userEvent.click(screen.getByRole("button", { name: "Save threshold" }));
    expect(await screen.findByText("Saved.")).toBeInTheDocument();
    expect(saved).toEqual({ p_organization_id: ORG, p_threshold: 250 });
    expect(view.calls).toContain("POST /rest/v1/rpc/set_low_balance_threshold");
    expect(await screen.findByRole("button", { name: "Buy 1,000 credits" })).toBeInTheDocument();
    expect(screen.queryByRole("note")).not.toBeInTheDocument();
  });

  it("shows members every setting read-only and names the owners and admins to ask, once", async () => {
    renderTab("member", handler(() => json([], { total: 0 })));
    expect(await screen.findByText("Alert when the balance falls below 100 credits.")).toBeInTheDocument();
    expect(screen.queryByLabelText(/Alert me when/)).not.toBeInTheDocument();
    await screen.findByText("$10.00");
    expect(screen.queryByRole("button", { name: /^Buy/ })).not.toBeInTheDocument();
    expect(screen.queryByRole("radio")).not.toBeInTheDocument();
    const notes = await screen.findAllByRole("note");
    expect(notes).toHaveLength(1);
    await vi.waitFor(() => expect(notes[0]).toHaveTextContent(
      "Only owners and admins of this organization can change billing. Ask dana@example.com (owner) or abe@example.com (admin) to buy credits or change these settings. (Your role: member.)"));
    const order = document.getElementById("spending-order")!;
    expect(order).toHaveTextContent("Purchased credits first (they never expire).");
    await vi.waitFor(() => expect(order).toHaveTextContent("Ask dana@example.com (owner) or abe@example.com (admin) to change the spending order."));
    // The empty ledger tells a member whom to ask, instead of a button they cannot use.
    expect(await screen.findByText("Ask dana@example.com (owner) or abe@example.com (admin) to buy credits.")).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Buy credits" })).not.toBeInTheDocument();
  });
});
