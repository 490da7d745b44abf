import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { json, postgrestError, renderWithBackend, type FakeHandler } from "@/test/fake-backend";
import { ORG } from "@/test/fixtures";
import type { SpendLimit } from "@/types/billing";
import { SpendLimitCard } from "./spend-limit-card";

const limited: SpendLimit = { monthly_credits: 5000, month_start: "2026-12-01", consumed_this_month: 1200, reserved: 300, remaining: 3500 };
const unlimited: SpendLimit = { monthly_credits: null, month_start: "2026-12-01", consumed_this_month: 1200, reserved: 0, remaining: null };

/** Answers get_spend_limit with `state`, and records what set_spend_limit was sent (then answers with `after`). */
function backend(state: SpendLimit, after?: SpendLimit) {
  const sent: unknown[] = [];
  let current = state;
  const handler: FakeHandler = ({ path, body }) => {
    if (path === "/rest/v1/rpc/get_spend_limit") return json(current);
    if (path === "/rest/v1/rpc/set_spend_limit") {
      sent.push(body);
      if (after) current = after;
      return new Response(null, { status: 204 });
    }
    return undefined;
  };
  return { handler, sent };
}

describe("Spend limit card", () => {
  it("shows this month's consumption and reservations against the limit as a meter, with the UTC reset date", async () => {
    renderWithBackend(<SpendLimitCard organizationId={ORG} role="member" />, backend(limited).handler);
    const meter = await screen.findByRole("meter", { name: "Used this month" });
    expect(meter).toHaveAttribute("value", "1500");
    expect(meter).toHaveAttribute("max", "5000");
    expect(screen.getByText(/1,500 credits of 5,000 credits used this month \(300 credits of it reserved\); 3,500 credits left until Jan 1, 2027 \(UTC\)/)).toBeInTheDocument();
    expect(screen.queryByText(/The limit is reached/)).not.toBeInTheDocument();
  });

  it("shows members the limit read-only (the Credits tab says once whom to ask)", async () => {
    renderWithBackend(<SpendLimitCard organizationId={ORG} role="member" />, backend(limited).handler);
    await screen.findByRole("meter");
    expect(screen.queryByLabelText("Monthly spend limit (credits)")).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /limit/ })).not.toBeInTheDocument();
    expect(screen.queryByRole("note")).not.toBeInTheDocument();
  });

  it("lets an owner set a limit where there was none", async () => {
    const { handler, sent } = backend(unlimited, { ...unlimited, monthly_credits: 2000, remaining: 800 });
    const view = renderWithBackend(<SpendLimitCard organizationId={ORG} role="owner" />, handler);
    expect(await screen.findByText("No monthly limit. 1,200 credits used this month.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Remove limit" })).not.toBeInTheDocument();
    const input = screen.getByLabelText("Monthly spend limit (credits)");
    expect(input).toHaveValue(null);
    expect(screen.getByRole("button", { name: "Save limit" })).toBeDisabled();
    await userEvent.type(input, "2000");
    await userEvent.click(screen.getByRole("button", { name: "Save limit" }));
    expect(await screen.findByText("Saved.")).toBeInTheDocument();
    expect(sent).toEqual([{ p_organization_id: ORG, p_monthly_credits: 2000 }]);
    expect(await screen.findByRole("meter", { name: "Used this month" })).toHaveAttribute("max", "2000");
    expect(view.calls.filter((c) => c === "POST /rest/v1/rpc/get_spend_limit").length).toBeGreaterThan(1);
  });

  it("lets an admin change or remove the limit", async () => {
    const { handler, sent } = backend(limited, unlimited);
    renderWithBackend(<SpendLimitCard organizationId={ORG} role="admin" />, handler);
    const input = await screen.findByLabelText("Monthly spend limit (credits)");
    expect(input).toHaveValue(5000);
    expect(input).toHaveAccessibleDescription(/Per calendar month \(UTC\)/);
    await userEvent.click(screen.getByRole("button", { name: "Remove limit" }));
    expect(await screen.findByText("No monthly limit. 1,200 credits used this month.")).toBeInTheDocument();
    expect(sent).toEqual([{ p_organization_id: ORG, p_monthly_credits: null }]);
  });

  it("says when the limit is reached and what is refused", async () => {
    renderWithBackend(
      <SpendLimitCard organizationId={ORG} role="owner" />,
      backend({ ...limited, consumed_this_month: 4900, reserved: 100, remaining: 0 }).handler,
    );
    expect(await screen.findByRole("meter")).toHaveAttribute("value", "5000");
    expect(screen.getByRole("note")).toHaveTextContent(/The limit is reached: consumption and reservations are refused until Jan 1, 2027/);
  });

  it("shows why a change was refused", async () => {
    renderWithBackend(<SpendLimitCard organizationId={ORG} role="owner" />, ({ path }) => {
      if (path === "/rest/v1/rpc/get_spend_limit") return json(limited);
      if (path === "/rest/v1/rpc/set_spend_limit") return postgrestError(403, "42501", "permission denied");
      return undefined;
    });
    const input = await screen.findByLabelText("Monthly spend limit (credits)");
    await userEvent.clear(input);
    await userEvent.type(input, "10");
    await userEvent.click(screen.getByRole("button", { name: "Save limit" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("You are not allowed to do this in this organization.");
  });

  it("has loading and error states", async () => {
    renderWithBackend(<SpendLimitCard organizationId={ORG} role="owner" />, ({ path }) =>
      path === "/rest/v1/rpc/get_spend_limit" ? postgrestError(500, "XX000", "boom") : undefined);
    expect(screen.getByText("Loading spend limit…")).toBeInTheDocument();
    expect(await screen.findByText("The spend limit could not be loaded.")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });
});
