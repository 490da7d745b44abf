import { describe, expect, it } from "vitest";
import { askManagersSentence } from "./ask-managers-sentence";

const manager = (email: string, role: "owner" | "admin") => ({ user_id: email, email, role });

describe("whom a member asks", () => {
  it("names the owners and admins by email, owners first", () => {
    expect(askManagersSentence([manager("dana@example.com", "owner")], "buy credits")).toBe("Ask dana@example.com (owner) to buy credits.");
    expect(askManagersSentence([manager("dana@example.com", "owner"), manager("abe@example.com", "admin")], "buy credits"))
      .toBe("Ask dana@example.com (owner) or abe@example.com (admin) to buy credits.");
  });

  it("names three and counts the rest", () => {
    const many = ["a", "b", "c", "d", "e"].map((n) => manager(`${n}@example.com`, n === "a" ? "owner" : "admin"));
    expect(askManagersSentence(many, "choose a plan")).toBe(
      "Ask a@example.com (owner), b@example.com (admin), c@example.com (admin), or one of 2 other owners and admins to choose a plan.");
  });

  it("still says who can act when the list could not be read", () => {
    expect(askManagersSentence(undefined, "buy credits")).toBe("Ask an owner or admin of this organization to buy credits.");
  });
});
