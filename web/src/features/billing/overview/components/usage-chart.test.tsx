import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { UsageChart } from "./usage-chart";

const ORG = "00000000-0000-4000-8000-000000000001";
const now = new Date("2026-11-23T12:00:00Z");
const rows = [
  { organization_id: ORG, day: "2026-11-22", event_key: "api_call_basic", events: 7, quantity: 7, credits: 7 },
  { organization_id: ORG, day: "2026-11-23", event_key: "ai_inference", events: 4, quantity: 4, credits: 100 },
  { organization_id: ORG, day: "2026-11-23", event_key: "api_call_basic", events: 30, quantity: 30, credits: 30 },
];
// The catalog's names (credit_events.name), as the Credits ledger shows them.
const eventNames = new Map([["ai_inference", "AI inference"], ["api_call_basic", "Basic API call"]]);

describe("the usage chart", () => {
  it("has a y axis of round figures above the peak and the window's dates under the bars", () => {
    const { container } = render(<UsageChart rows={rows} eventNames={eventNames} now={now} />);
    const yAxis = container.querySelector(".chart-y-axis")!;
    expect([...yAxis.querySelectorAll("span")].map((tick) => tick.textContent)).toEqual(["0", "50", "100", "150"]);
    const xAxis = container.querySelector(".chart-x-axis")!;
    expect([...xAxis.querySelectorAll("span")].map((tick) => tick.textContent)).toEqual(["Oct 25", "Nov 1", "Nov 8", "Nov 15", "Nov 23"]);
    expect(screen.getByRole("img", { name: "Credits used per day, 137 in total" })).toBeInTheDocument();
  });

  it("reads out each day from the keyboard: one tab stop on today, arrows, Home and End move", async () => {
    const user = userEvent.setup();
    render(<UsageChart rows={rows} eventNames={eventNames} now={now} />);
    const readout = screen.getByTestId("usage-readout");
    expect(readout).toHaveTextContent("137 credits in 30 days; the most in a day 130, on Nov 23.");

    await user.tab();
    expect(screen.getByRole("button", { name: "Nov 23, 2026: 130 credits (AI inference 100, Basic API call 30)" })).toHaveFocus();
    expect(readout).toHaveTextContent("Nov 23, 2026: 130 credits (AI inference 100, Basic API call 30)");

    await user.keyboard("{ArrowLeft}");
    expect(screen.getByRole("button", { name: "Nov 22, 2026: 7 credits, all Basic API call" })).toHaveFocus();
    expect(readout).toHaveTextContent("Nov 22, 2026: 7 credits, all Basic API call");

    await user.keyboard("{Home}");
    expect(readout).toHaveTextContent("Oct 25, 2026: 0 credits");
    await user.keyboard("{ArrowLeft}{End}");
    expect(readout).toHaveTextContent("Nov 23, 2026: 130 credits");

    // Leaving and coming back lands on the day last read, in one tab stop.
    await user.tab({ shift: true });
    await user.keyboard("{Home}");
    await user.tab();
    expect(document.activeElement).toHaveAccessibleName(/^Nov 23, 2026/);
  });

  it("a tap on a bar shows its day (touch has no hover)", async () => {
    const user = userEvent.setup();
    render(<UsageChart rows={rows} eventNames={eventNames} now={now} />);
    await user.pointer({ keys: "[TouchA]", target: screen.getByRole("button", { name: /^Nov 22, 2026/ }) });
    expect(screen.getByTestId("usage-readout")).toHaveTextContent("Nov 22, 2026: 7 credits, all Basic API call");
  });

  it("holds the same figures as a table, with readable days", () => {
    render(<UsageChart rows={rows} eventNames={eventNames} now={now} />);
    const table = screen.getByRole("table", { name: "Credits used per day and event" });
    const cells = within(table).getAllByRole("row").slice(1).map((row) => within(row).getAllByRole("cell").map((cell) => cell.textContent));
    expect(cells).toEqual([
      ["Nov 22, 2026", "Basic API call", "7"],
      ["Nov 23, 2026", "AI inference", "100"],
      ["Nov 23, 2026", "Basic API call", "30"],
    ]);
  });

  it("names each event in the legend as the catalog does, and an event no longer in it by its key made readable", () => {
    const retired = [...rows, { organization_id: ORG, day: "2026-11-21", event_key: "legacy_export", events: 1, quantity: 1, credits: 5 }];
    render(<UsageChart rows={retired} eventNames={eventNames} now={now} />);
    const legend = screen.getByRole("list", { name: "Credits by event, last 30 days" });
    expect(within(legend).getAllByRole("listitem").map((item) => item.textContent)).toEqual(["AI inference 100", "Basic API call 37", "legacy export 5"]);
    expect(screen.getByRole("button", { name: "Nov 21, 2026: 5 credits, all legacy export" })).toBeInTheDocument();
  });
});
