import { useId } from "react";
import type { Period } from "../api/operator-keys";

export type PeriodPreset = "7d" | "30d" | "90d" | "month" | "last_month" | "custom";

const DAY = 86_400_000;

/** The period a preset means at `now` (UTC days; `to` is the start of tomorrow, so today counts). */
export function presetPeriod(preset: Exclude<PeriodPreset, "custom">, now = new Date()): Period {
  const tomorrow = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  switch (preset) {
    case "7d":
      return { from: new Date(tomorrow - 7 * DAY).toISOString(), to: new Date(tomorrow).toISOString() };
    case "30d":
      return { from: new Date(tomorrow - 30 * DAY).toISOString(), to: new Date(tomorrow).toISOString() };
    case "90d":
      return { from: new Date(tomorrow - 90 * DAY).toISOString(), to: new Date(tomorrow).toISOString() };
    case "month":
      return { from: new Date(monthStart).toISOString(), to: new Date(tomorrow).toISOString() };
    case "last_month":
      return {
        from: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)).toISOString(),
        to: new Date(monthStart).toISOString(),
      };
  }
}

export interface PeriodChoice {
  preset: PeriodPreset;
  period: Period;
}

/** Presets (last 7 / 30 / 90 days, this month, last month) or two dates, in UTC. */
export function PeriodPicker({ value, onChange }: { value: PeriodChoice; onChange: (choice: PeriodChoice) => void }) {
  const id = useId();
  const day = (iso: string) => iso.slice(0, 10);
  const setCustom = (from: string, to: string) => {
    if (!from || !to) return;
    const start = new Date(`${from}T00:00:00Z`);
    const end = new Date(new Date(`${to}T00:00:00Z`).getTime() + DAY);
    if (start < end) onChange({ preset: "custom", period: { from: start.toISOString(), to: end.toISOString() } });
  };
  return (
    <div className="inline-form op-period" role="group" aria-label="Period">
      <label htmlFor={`${id}-preset`}>Period</label>
      <select
        id={`${id}-preset`}
        value={value.preset}
        onChange={(event) => {
          const preset = event.target.value as PeriodPreset;
          if (preset === "custom") onChange({ preset, period: value.period });
          else onChange({ preset, period: presetPeriod(preset) });
        }}
      >
        <option value="7d">Last 7 days</option>
        <option value="30d">Last 30 days</option>
        <option value="90d">Last 90 days</option>
        <option value="month">This month</option>
        <option value="last_month">Last month</option>
        <option value="custom">Dates…</option>
      </select>
      {value.preset === "custom" ? (
        <>
          <label htmlFor={`${id}-from`}>From</label>
          <input id={`${id}-from`} type="date" value={day(value.period.from)} onChange={(e) => setCustom(e.target.value, day(new Date(new Date(value.period.to).getTime() - DAY).toISOString()))} />
          <label htmlFor={`${id}-to`}>To</label>
          <input id={`${id}-to`} type="date" value={day(new Date(new Date(value.period.to).getTime() - DAY).toISOString())} onChange={(e) => setCustom(day(value.period.from), e.target.value)} />
        </>
      ) : null}
      <span className="muted">(UTC)</span>
    </div>
  );
}
