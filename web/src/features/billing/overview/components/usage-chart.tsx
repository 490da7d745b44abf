import { useRef, useState, type KeyboardEvent, type PointerEvent } from "react";
import { formatCreditNumber, formatCredits, formatDay } from "@/lib/format";
import type { CreditUsageDay } from "@/types/billing";
import type { EventNames } from "../../api/get-event-names";
import { eventName } from "../../components/event-name";
import { USAGE_DAYS, usageWindowStart } from "../api/get-usage";
import { dateTickIndices, usageTicks } from "../usage-scale";

// Colour tokens from styles.css, so the chart follows the light or dark theme.
const PALETTE = ["--chart-1", "--chart-2", "--chart-3", "--chart-4", "--chart-5", "--chart-6"].map((token) => `var(${token})`);

interface DayBar {
  day: string;
  total: number;
  parts: { eventKey: string; credits: number }[];
}

/** Buckets the view's rows into one bar per UTC day of the window, stacked by event. */
export function buildUsageBars(rows: CreditUsageDay[], now: Date): { bars: DayBar[]; events: string[] } {
  const start = new Date(`${usageWindowStart(now)}T00:00:00Z`);
  const events = [...new Set(rows.map((row) => row.event_key))].sort();
  const bars: DayBar[] = [];
  for (let i = 0; i < USAGE_DAYS; i += 1) {
    const day = new Date(start.getTime() + i * 86_400_000).toISOString().slice(0, 10);
    const parts = events.map((eventKey) => ({
      eventKey,
      credits: rows
        .filter((row) => row.day === day && row.event_key === eventKey)
        .reduce((sum, row) => sum + (row.credits ?? 0), 0),
    }));
    bars.push({ day, total: parts.reduce((sum, part) => sum + part.credits, 0), parts });
  }
  return { bars, events };
}

/** What one day's bar says, in the catalog's words: the readout's text and the bar's accessible name. */
export function describeDay(bar: DayBar, names: EventNames): string {
  const used = bar.parts.filter((part) => part.credits > 0);
  const split = used.length > 1 ? ` (${used.map((part) => `${eventName(part.eventKey, names)} ${formatCreditNumber(part.credits)}`).join(", ")})` : "";
  const only = used.length === 1 ? `, all ${eventName(used[0]!.eventKey, names)}` : "";
  return `${formatDay(bar.day, { year: true })}: ${formatCredits(bar.total)}${only}${split}`;
}

/**
 * Credits used per day over the last 30 days as hand-written SVG (no chart library in the
 * first chunk), stacked by event, on a y axis of round figures with dates under the x axis.
 * Each day is also a button in one tab stop (arrow keys, Home and End move between days), so
 * its figures can be read by pointing, tapping or dragging along the chart, or from the
 * keyboard, in the readout above it. The SVG is one image for screen readers; the day buttons
 * name each day's figures, and the legend and the table hold them all. Events go by the
 * catalog's names (`eventNames`), as in the Credits ledger.
 */
export function UsageChart({ rows, eventNames, now = new Date() }: { rows: CreditUsageDay[]; eventNames: EventNames; now?: Date }) {
  const { bars, events } = buildUsageBars(rows, now);
  const [active, setActive] = useState<number | null>(null);
  // The day the keyboard lands on when tabbing in: the one last shown, else today.
  const [focusIndex, setFocusIndex] = useState(bars.length - 1);
  const buttons = useRef<(HTMLButtonElement | null)[]>([]);

  const peak = Math.max(0, ...bars.map((bar) => bar.total));
  const ticks = usageTicks(peak);
  const top = ticks[ticks.length - 1]!;
  const height = 100;
  const y = (credits: number) => height - (credits / top) * height;
  const color = (eventKey: string) => PALETTE[events.indexOf(eventKey) % PALETTE.length];
  const total = bars.reduce((sum, bar) => sum + bar.total, 0);
  const perEvent = (eventKey: string) =>
    rows.filter((row) => row.event_key === eventKey).reduce((sum, row) => sum + (row.credits ?? 0), 0);
  const peakBar = bars.find((bar) => bar.total === peak)!;
  const last = bars.length - 1;
  const yLabelWidth = Math.max(...ticks.map((tick) => formatCreditNumber(tick).length)) + 0.5;

  function show(index: number) {
    setActive(index);
    setFocusIndex(index);
  }

  function onKeyDown(event: KeyboardEvent<HTMLButtonElement>, index: number) {
    const target = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: last }[event.key];
    if (target === undefined) return;
    event.preventDefault();
    const next = Math.min(last, Math.max(0, target));
    show(next);
    buttons.current[next]?.focus();
  }

  // Pointing or dragging along the plot (a finger included) shows the day under it.
  function onPointer(event: PointerEvent<HTMLDivElement>) {
    const box = event.currentTarget.getBoundingClientRect();
    if (box.width === 0) return;
    show(Math.min(last, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * bars.length))));
  }

  return (
    <figure className="usage-chart">
      <p className="chart-readout" data-testid="usage-readout">
        {active === null
          ? `${formatCredits(total)} in 30 days; the most in a day ${formatCreditNumber(peak)}, on ${formatDay(peakBar.day)}.`
          : describeDay(bars[active]!, eventNames)}
      </p>
      <div className="chart-frame">
        {/* As wide as its longest label: the labels are placed absolutely, so they give it no width. */}
        <div className="chart-y-axis" aria-hidden="true" style={{ width: `${yLabelWidth}ch` }}>
          {ticks.map((tick) => (
            <span key={tick} style={{ bottom: `${(tick / top) * 100}%` }}>
              {formatCreditNumber(tick)}
            </span>
          ))}
        </div>
        <div
          className={`chart-plot${active === null ? "" : " has-active"}`}
          onPointerDown={onPointer}
          onPointerMove={onPointer}
          onPointerLeave={(event) => {
            if (event.pointerType === "mouse") setActive(null);
          }}
        >
          {/* Stretched to the plot's width at a fixed height: a wide chart must not grow tall. */}
          <svg
            viewBox={`0 0 ${bars.length} ${height}`}
            preserveAspectRatio="none"
            role="img"
            aria-label={`Credits used per day, ${formatCreditNumber(total)} in total`}
          >
            {ticks.map((tick) => (
              <line key={tick} className="chart-grid" x1={0} x2={bars.length} y1={y(tick)} y2={y(tick)} vectorEffect="non-scaling-stroke" />
            ))}
            {bars.map((bar, index) => {
              let base = height;
              return (
                <g key={bar.day} className={index === active ? "chart-bar active" : "chart-bar"}>
                  {bar.parts.map((part) => {
                    const h = (part.credits / top) * height;
                    base -= h;
                    return part.credits > 0 ? (
                      <rect key={part.eventKey} x={index + 0.15} y={base} width={0.7} height={h} style={{ fill: color(part.eventKey) }} />
                    ) : null;
                  })}
                </g>
              );
            })}
          </svg>
          <div className="chart-days" role="group" aria-label="Credits used per day: use the arrow keys to move between days">
            {bars.map((bar, index) => (
              <button
                key={bar.day}
                ref={(element) => {
                  buttons.current[index] = element;
                }}
                type="button"
                className="chart-day"
                tabIndex={index === focusIndex ? 0 : -1}
                aria-label={describeDay(bar, eventNames)}
                onFocus={() => show(index)}
                onClick={() => show(index)}
                onKeyDown={(event) => onKeyDown(event, index)}
              />
            ))}
          </div>
        </div>
        <div className="chart-x-axis" aria-hidden="true">
          {dateTickIndices(bars.length).map((index) => (
            <span
              key={index}
              className={index === 0 ? "first" : index === last ? "last" : undefined}
              style={index === 0 || index === last ? undefined : { left: `${((index + 0.5) / bars.length) * 100}%` }}
            >
              {formatDay(bars[index]!.day)}
            </span>
          ))}
        </div>
      </div>
      <figcaption>
        <ul className="legend" aria-label="Credits by event, last 30 days">
          {events.map((eventKey) => (
            <li key={eventKey}>
              <span className="swatch" style={{ background: color(eventKey) }} aria-hidden="true" />
              {eventName(eventKey, eventNames)} <span className="muted">{formatCreditNumber(perEvent(eventKey))}</span>
            </li>
          ))}
        </ul>
        <details>
          <summary>Usage as a table</summary>
          <table>
            <caption className="visually-hidden">Credits used per day and event</caption>
            <thead>
              <tr>
                <th scope="col">Day</th>
                <th scope="col">Event</th>
                <th scope="col">Credits</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={`${row.day}-${row.event_key}`}>
                  <td>{row.day ? formatDay(row.day, { year: true }) : null}</td>
                  <td>{row.event_key ? eventName(row.event_key, eventNames) : null}</td>
                  <td>{formatCreditNumber(row.credits ?? 0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      </figcaption>
    </figure>
  );
}
