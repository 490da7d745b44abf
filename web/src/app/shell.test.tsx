import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { createFakeBackend, json } from "@/test/fake-backend";
import { createQueryClient } from "@/lib/query-client";
import { AppProviders } from "./providers";
import { AppShell } from "./shell";

describe("signed out", () => {
  it("shows a labelled sign-in form and reports a wrong password", async () => {
    window.localStorage.clear();
    const { backend } = createFakeBackend(({ path }) =>
      path === "/auth/v1/token"
        ? json({ code: 400, error_code: "invalid_credentials", msg: "Invalid login credentials" }, { status: 400 })
        : undefined,
    );
    render(
      <AppProviders backend={backend} queryClient={createQueryClient()}>
        <AppShell />
      </AppProviders>,
    );
    expect(await screen.findByRole("heading", { name: "Sign in" })).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Email"), "someone@example.test");
    await userEvent.type(screen.getByLabelText("Password"), "wrong-password");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Invalid login credentials");
  });
});
