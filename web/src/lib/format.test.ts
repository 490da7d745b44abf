import { describe, expect, it } from "vitest";
import { currencyMinorDigits, formatCreditDelta, formatCredits, formatMoney } from "./format";

describe("formatMoney", () => {
  it("reads usd amounts as cents", () => {
    expect(formatMoney(1900, "usd", "en-US")).toBe("$19.00");
    expect(formatMoney(199000, "usd", "en-US")).toBe("$1,990.00");
    expect(formatMoney(5, "usd", "en-US")).toBe("$0.05");
  });

  it("reads a zero-decimal currency (jpy) as whole yen", () => {
    expect(currencyMinorDigits("jpy")).toBe(0);
    expect(formatMoney(1900, "jpy", "en-US")).toBe("¥1,900");
  });

  it("knows three-decimal currencies from Intl", () => {
    expect(currencyMinorDigits("kwd")).toBe(3);
  });

  it("accepts Stripe's lowercase currency codes", () => {
    expect(formatMoney(4500, "eur", "de-DE")).toMatch(/^45,00\s€$/);
  });
});

describe("credits", () => {
  it("groups thousands and says credit or credits", () => {
    expect(formatCredits(12000, "en-US")).toBe("12,000 credits");
    expect(formatCredits(1, "en-US")).toBe("1 credit");
    expect(formatCredits(0, "en-US")).toBe("0 credits");
  });

  it("always signs ledger amounts", () => {
    expect(formatCreditDelta(500, "en-US")).toBe("+500");
    expect(formatCreditDelta(-25, "en-US")).toBe("-25");
    expect(formatCreditDelta(0, "en-US")).toBe("0");
  });
});
