/**
 * What each credit pack is worth against the others: its price per 1,000 credits, and what it
 * saves per credit against the dearest pack sold in the same currency (packs in different
 * currencies are never compared).
 */
export interface PackPrice {
  code: string;
  credits: number;
  unit_amount: number;
  currency: string;
}

export interface PackValue {
  /** The price of 1,000 credits at this pack's rate, in the currency's minor units (may be fractional). */
  perThousandCredits: number;
  /** Whole percent saved per credit against the dearest pack in the currency; 0 for the dearest itself. */
  savingPercent: number;
}

export function packValues(packs: readonly PackPrice[]): Map<string, PackValue> {
  const rate = (pack: PackPrice) => pack.unit_amount / pack.credits;
  const dearest = new Map<string, number>();
  for (const pack of packs) {
    if (pack.credits <= 0) continue;
    const currency = pack.currency.toLowerCase();
    dearest.set(currency, Math.max(dearest.get(currency) ?? 0, rate(pack)));
  }
  const values = new Map<string, PackValue>();
  for (const pack of packs) {
    if (pack.credits <= 0) continue;
    const top = dearest.get(pack.currency.toLowerCase()) ?? 0;
    // Floor, so a saving is never rounded up into a promise the price does not keep.
    const saving = top > 0 ? Math.floor((1 - rate(pack) / top) * 100 + 1e-9) : 0;
    values.set(pack.code, { perThousandCredits: rate(pack) * 1000, savingPercent: Math.max(saving, 0) });
  }
  return values;
}
