import { describe, expect, it } from "vitest";
import { tabFromLocation, urlForTab } from "./tab-location";

describe("the tab in the address", () => {
  it("reads ?tab=, falls back to the old #hash form, and defaults to Overview", () => {
    expect(tabFromLocation("?tab=credits", "")).toBe("credits");
    expect(tabFromLocation("", "#history")).toBe("history");
    expect(tabFromLocation("?tab=nonsense", "")).toBe("overview");
    expect(tabFromLocation("?checkout=success&kind=credits&session_id=cs_1", "")).toBe("overview");
  });

  it("writes ?tab= and keeps the other parameters (Stripe's return parameters included)", () => {
    expect(urlForTab("/", "", "plans")).toBe("/?tab=plans");
    expect(urlForTab("/", "?portal=returned&tab=plans", "history")).toBe("/?portal=returned&tab=history");
    expect(urlForTab("/", "?tab=plans", "overview")).toBe("/");
  });
});
