import { useId, useState, type FormEvent } from "react";
import { ErrorState, Skeleton } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatCredits, formatMoney } from "@/lib/format";
import { canManageBilling } from "@/lib/roles";
import type { CreditProduct, OrganizationRole } from "@/types/billing";
import { useCreditProducts } from "../api/get-credit-products";
import { type AutoTopUpSetting, useAutoTopUp, useCardOnFile, useSetAutoTopUp } from "../api/auto-top-up";

function summary(setting: AutoTopUpSetting, products: CreditProduct[]): string {
  const product = products.find((p) => p.id === setting.productId);
  const pack = product ? `${product.name} (${formatMoney(product.unit_amount, product.currency)})` : "a credit pack";
  return `Buys ${pack} when the balance falls below ${formatCredits(setting.threshold)}, at most ${setting.monthlyLimit} ${
    setting.monthlyLimit === 1 ? "time" : "times"
  } a month.`;
}

interface Draft {
  productCode: string;
  threshold: string;
  monthlyLimit: string;
}

/**
 * The auto top-up setting: owners and admins choose the pack, the threshold and the monthly
 * limit (`set_auto_top_up`) or turn it off; members read it.
 */
export function AutoTopUpForm({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  const setting = useAutoTopUp(organizationId);
  const products = useCreditProducts();
  const card = useCardOnFile(organizationId);
  const save = useSetAutoTopUp(organizationId);
  const [draft, setDraft] = useState<Draft | null>(null);
  const id = useId();
  if (setting.isPending || products.isPending) return <Skeleton label="Loading auto top-up…" lines={5} />;
  if (setting.isError) return <ErrorState title="Auto top-up could not be loaded." error={setting.error} onRetry={() => void setting.refetch()} />;
  if (products.isError) return <ErrorState title="Credit packs could not be loaded." error={products.error} onRetry={() => void products.refetch()} />;

  const current = setting.data;
  const on = current?.enabled ?? false;
  const status = on && current ? summary(current, products.data) : "Auto top-up is off.";
  const turnedOffBySystem = current && !current.enabled && current.disabledReason
    ? <p role="alert" className="field-error">Auto top-up was turned off: {current.disabledReason}. Check the card on file, then turn it on again.</p>
    : null;
  const noCard = on && card.isSuccess && card.data === null
    ? <p className="notice" role="note">No card on file: top-ups start once a card is saved.</p>
    : null;

  if (!canManageBilling(role)) {
    return (
      <div className="stack">
        <p>{status}</p>
        {turnedOffBySystem}
      </div>
    );
  }

  const currentCode = products.data.find((p) => p.id === current?.productId)?.code;
  const values: Draft = draft ?? {
    productCode: currentCode ?? products.data[0]?.code ?? "",
    threshold: String(current?.threshold ?? 100),
    monthlyLimit: String(current?.monthlyLimit ?? 3),
  };
  const change = (field: keyof Draft) => (event: { target: { value: string } }) => setDraft({ ...values, [field]: event.target.value });
  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate(
      { productCode: values.productCode, threshold: Number(values.threshold), monthlyLimit: Number(values.monthlyLimit) },
      { onSuccess: () => setDraft(null) },
    );
  }
  return (
    <div className="stack">
      <p role="status">{status}</p>
      {turnedOffBySystem}
      {noCard}
      <form className="stack" onSubmit={submit} aria-label="Auto top-up">
        <div className="inline-form">
          <label htmlFor={`${id}-pack`}>Pack to buy</label>
          <select id={`${id}-pack`} value={values.productCode} onChange={change("productCode")}>
            {products.data.map((product) => (
              <option key={product.code} value={product.code}>
                {product.name} ({formatMoney(product.unit_amount, product.currency)})
              </option>
            ))}
          </select>
        </div>
        <div className="inline-form">
          <label htmlFor={`${id}-threshold`}>When the balance falls below (credits)</label>
          <input id={`${id}-threshold`} type="number" min={1} step={1} required inputMode="numeric"
            value={values.threshold} onChange={change("threshold")} />
        </div>
        <div className="inline-form">
          <label htmlFor={`${id}-limit`}>At most this many top-ups a month</label>
          <input id={`${id}-limit`} type="number" min={1} max={100} step={1} required inputMode="numeric"
            value={values.monthlyLimit} onChange={change("monthlyLimit")} />
        </div>
        <div className="inline-form">
          <button type="submit" className="button" disabled={save.isPending}>
            {save.isPending && save.variables ? "Saving…" : on ? "Save auto top-up" : "Turn on auto top-up"}
          </button>
          {on ? (
            <button type="button" className="button secondary" disabled={save.isPending} onClick={() => save.mutate(null, { onSuccess: () => setDraft(null) })}>
              {save.isPending && !save.variables ? "Turning off…" : "Turn off"}
            </button>
          ) : null}
        </div>
      </form>
      {save.isSuccess && draft === null ? <p role="status">Saved.</p> : null}
      {save.isError ? <p role="alert" className="field-error">{errorMessage(save.error)}</p> : null}
    </div>
  );
}
