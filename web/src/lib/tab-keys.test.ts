import { describe, expect, it } from "vitest";
import { tabForKey } from "./tab-keys";

const tabs = ["overview", "plans", "credits"] as const;

describe("tabForKey", () => {
  it("moves with the arrows, wrapping at both ends, and jumps with Home and End", () => {
    expect(tabForKey("ArrowRight", tabs, "overview")).toBe("plans");
    expect(tabForKey("ArrowRight", tabs, "credits")).toBe("overview");
    expect(tabForKey("ArrowLeft", tabs, "overview")).toBe("credits");
    expect(tabForKey("Home", tabs, "credits")).toBe("overview");
    expect(tabForKey("End", tabs, "overview")).toBe("credits");
  });

  it("leaves every other key to the browser", () => {
    expect(tabForKey("Enter", tabs, "plans")).toBeNull();
    expect(tabForKey("ArrowDown", tabs, "plans")).toBeNull();
  });
});
