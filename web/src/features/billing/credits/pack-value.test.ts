import { describe, expect, it } from "vitest";
import { packValues } from "./pack-value";

const pack = (code: string, credits: number, unit_amount: number, currency = "usd") => ({ code, credits, unit_amount, currency });

describe("packValues", () => {
  it("prices each pack per 1,000 credits and says what it saves against the dearest one", () => {
    // The seed's packs: $10 for 1,000, $45 for 5,000, $160 for 20,000.
    const values = packValues([pack("credits_1000", 1000, 1000), pack("credits_5000", 5000, 4500), pack("credits_20000", 20000, 16000)]);
    expect(values.get("credits_1000")).toEqual({ perThousandCredits: 1000, savingPercent: 0 });
    expect(values.get("credits_5000")).toEqual({ perThousandCredits: 900, savingPercent: 10 });
    expect(values.get("credits_20000")).toEqual({ perThousandCredits: 800, savingPercent: 20 });
  });

  it("never rounds a saving up", () => {
    // 3,000 credits for $29.99 against $10 per 1,000: 0.033% saved, shown as none.
    expect(packValues([pack("a", 1000, 1000), pack("b", 3000, 2999)]).get("b")?.savingPercent).toBe(0);
    // 1,000 credits for $8.01 against $10: 19.9%, shown as 19%.
    expect(packValues([pack("a", 1000, 1000), pack("b", 1000, 801)]).get("b")?.savingPercent).toBe(19);
  });

  it("compares packs only within their currency", () => {
    const values = packValues([pack("usd", 1000, 1000, "usd"), pack("eur", 1000, 500, "eur"), pack("eur_big", 2000, 800, "EUR")]);
    expect(values.get("usd")?.savingPercent).toBe(0);
    expect(values.get("eur")?.savingPercent).toBe(0);
    expect(values.get("eur_big")?.savingPercent).toBe(20);
  });
});
