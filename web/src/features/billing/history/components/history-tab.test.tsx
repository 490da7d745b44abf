import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { json, postgrestError, renderWithBackend } from "@/test/fake-backend";
import { ORG, payment } from "@/test/fixtures";
import HistoryTab from "./history-tab";

describe("History tab states", () => {
  it("shows a loading state, then the empty state", async () => {
    renderWithBackend(<HistoryTab organizationId={ORG} />, () => json([], { total: 0 }));
    expect(screen.getByRole("status")).toHaveTextContent("Loading billing history…");
    expect(await screen.findByText(/No payments yet/)).toBeInTheDocument();
  });

  it("shows the error and recovers on retry", async () => {
    let calls = 0;
    renderWithBackend(<HistoryTab organizationId={ORG} />, () =>
      ++calls === 1 ? postgrestError(403, "42501", "permission denied") : json([payment()], { total: 1 }),
    );
    expect(await screen.findByRole("alert")).toHaveTextContent(
      "Billing history could not be loaded. You are not allowed to do this in this organization.",
    );
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByText("$19.00")).toBeInTheDocument();
  });

  it("lists amounts in their currency with invoice and receipt links", async () => {
    renderWithBackend(<HistoryTab organizationId={ORG} />, () =>
      json([payment(), payment({ id: "bh-2", kind: "credit_purchase", amount: 1000, currency: "jpy", description: "", invoice_url: null })], {
        total: 2,
      }),
    );
    expect(await screen.findByText("¥1,000")).toBeInTheDocument();
    expect(screen.getByText("credit purchase")).toBeInTheDocument();
    expect(screen.getAllByRole("link", { name: /^Receipt/ })).toHaveLength(2);
    expect(screen.getByRole("link", { name: /^Invoice/ })).toHaveAttribute("href", "https://invoice.stripe.test/in_1");
  });

  it("pages through the history ten at a time", async () => {
    const view = renderWithBackend(<HistoryTab organizationId={ORG} />, ({ url }) =>
      json([payment({ id: `bh-${url.searchParams.get("offset") ?? "0"}` })], { total: 25 }),
    );
    expect(await screen.findByText("Page 1 of 3")).toBeInTheDocument();
    expect(screen.getByRole("table", { name: "Payments and invoices, newest first" })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Next" }));
    expect(await screen.findByText("Page 2 of 3")).toBeInTheDocument();
    expect(view.calls.some((c) => c.includes("offset=10") && c.includes("limit=10"))).toBe(true);
    expect(screen.getByRole("button", { name: "Previous" })).toBeEnabled();
  });

  it("labels every cell with its column, so each row reads as a card on a phone", async () => {
    renderWithBackend(<HistoryTab organizationId={ORG} />, () => json([payment()], { total: 1 }));
    await screen.findByText("$19.00");
    const table = screen.getByRole("table");
    expect(table).toHaveClass("cards-on-phone");
    const headers = [...table.querySelectorAll("th")].map((th) => th.textContent);
    for (const row of table.querySelectorAll("tbody tr")) {
      expect([...row.querySelectorAll("td")].map((td) => td.getAttribute("data-label"))).toEqual(headers);
    }
  });
});
