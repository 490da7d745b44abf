import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { json, renderWithBackend } from "@/test/fake-backend";
import { ORG, plan, subscription } from "@/test/fixtures";
import PlansTab from "./plans-tab";

const plans = [plan("starter"), plan("professional", { monthly_unit_amount: 4900, annual_unit_amount: 49000, sort_order: 20 })];

function backend(current: unknown[], trial = { eligible: true, reason: null as string | null }) {
  return ({ path }: { path: string }) => {
    if (path === "/rest/v1/subscription_plans") return json(plans);
    if (path === "/rest/v1/organization_subscriptions") return json(current);
    if (path === "/rest/v1/rpc/trial_eligibility") return json([trial]);
    return undefined;
  };
}

describe("Plans tab, role-based visibility", () => {
  it("shows owners a Choose button per plan and no notice", async () => {
    renderWithBackend(<PlansTab organizationId={ORG} role="owner" />, backend([]));
    expect(await screen.findByRole("button", { name: "Choose Starter" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Choose Professional" })).toBeInTheDocument();
    expect(screen.queryByRole("note")).not.toBeInTheDocument();
  });

  it("shows admins with a live subscription the portal, and marks the current plan", async () => {
    renderWithBackend(<PlansTab organizationId={ORG} role="admin" />, backend([subscription()]));
    expect(await screen.findByRole("button", { name: "Manage subscription" })).toBeInTheDocument();
    expect(screen.getByText("Current plan")).toBeInTheDocument();
    expect(screen.getByText("active")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /^Choose/ })).not.toBeInTheDocument();
  });

  it("shows members no checkout or portal buttons, and says why", async () => {
    renderWithBackend(<PlansTab organizationId={ORG} role="member" />, backend([subscription()]));
    expect(await screen.findByRole("note")).toHaveTextContent(/Only owners and admins/);
    expect(screen.queryByRole("button", { name: /Choose|Manage subscription/ })).not.toBeInTheDocument();
  });

  it("switches prices between monthly and annual", async () => {
    renderWithBackend(<PlansTab organizationId={ORG} role="member" />, backend([]));
    expect(await screen.findByText("$19.00")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("radio", { name: "Annual" }));
    expect(screen.getByText("$190.00")).toBeInTheDocument();
    expect(screen.getAllByText("12,000 credits per year")).toHaveLength(2);
    expect(screen.getByText("Saves $38.00 a year")).toBeInTheDocument();
  });

  it("shows an error with a retry when plans fail to load", async () => {
    renderWithBackend(<PlansTab organizationId={ORG} role="owner" />, ({ path }) =>
      path === "/rest/v1/subscription_plans"
        ? json({ code: "XX000", message: "boom" }, { status: 500 })
        : json([]),
    );
    expect(await screen.findByRole("alert")).toHaveTextContent("Plans could not be loaded.");
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });
});

describe("Plans tab, free trial", () => {
  it("promises the free trial and its credits while the organization may still have one", async () => {
    const view = renderWithBackend(<PlansTab organizationId={ORG} role="owner" />, backend([]));
    expect(await screen.findAllByText("14-day free trial with 500 credits")).toHaveLength(2);
    expect(view.calls).toContain(`POST /rest/v1/rpc/trial_eligibility`);
  });

  it("says the trial has been used, instead of promising one, when an owner already had a trial", async () => {
    renderWithBackend(<PlansTab organizationId={ORG} role="owner" />, backend([], { eligible: false, reason: "trial_used" }));
    expect(await screen.findAllByText(/^Your free trial has been used/)).toHaveLength(2);
    expect(screen.queryByText(/free trial with/)).not.toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Choose Starter" })).toBeInTheDocument();
  });
});
