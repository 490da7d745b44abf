import { formatCreditNumber, formatDate } from "@/lib/format";
import type { CreditUsageDay } from "@/types/billing";
import { USAGE_DAYS, usageWindowStart } from "../api/get-usage";

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

/**
 * Credits used per day over the last 30 days as inline SVG (no chart library in the
 * bundle), stacked by event, with the peak and the window's first and last day as text
 * beside it. The SVG is one image for screen readers; the same numbers are in the legend
 * (totals per event) and in the table.
 */
export function UsageChart({ rows, now = new Date() }: { rows: CreditUsageDay[]; now?: Date }) {
  const { bars, events } = buildUsageBars(rows, now);
  const max = Math.max(1, ...bars.map((bar) => bar.total));
  const width = 300;
  const height = 100;
  const barWidth = width / bars.length;
  const color = (eventKey: string) => PALETTE[events.indexOf(eventKey) % PALETTE.length];
  const total = bars.reduce((sum, bar) => sum + bar.total, 0);
  const perEvent = (eventKey: string) =>
    rows.filter((row) => row.event_key === eventKey).reduce((sum, row) => sum + (row.credits ?? 0), 0);
  const dayLabel = (day: string) => formatDate(`${day}T12:00:00Z`);

  return (
    <figure className="usage-chart">
      <p className="chart-scale muted" aria-hidden="true">
        Peak {formatCreditNumber(max)} a day
      </p>
      {/* Stretched to the card's width at a fixed height: a wide chart must not grow tall. */}
      <svg
        viewBox={`0 0 ${width} ${height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`Credits used per day, ${formatCreditNumber(total)} in total`}
      >
        {bars.map((bar, index) => {
          let y = height;
          return (
            <g key={bar.day}>
              <title>{`${dayLabel(bar.day)}: ${formatCreditNumber(bar.total)} credits`}</title>
              {bar.parts.map((part) => {
                const h = (part.credits / max) * (height - 2);
                y -= h;
                return part.credits > 0 ? (
                  <rect key={part.eventKey} x={index * barWidth + 0.5} y={y} width={barWidth - 1} height={h} style={{ fill: color(part.eventKey) }} />
                ) : null;
              })}
            </g>
          );
        })}
      </svg>
      <div className="chart-axis muted" aria-hidden="true">
        <span>{dayLabel(bars[0]!.day)}</span>
        <span>{dayLabel(bars[bars.length - 1]!.day)}</span>
      </div>
      <figcaption>
        <ul className="legend" aria-label="Credits by event, last 30 days">
          {events.map((eventKey) => (
            <li key={eventKey}>
              <span className="swatch" style={{ background: color(eventKey) }} aria-hidden="true" />
              {eventKey} <span className="muted">{formatCreditNumber(perEvent(eventKey))}</span>
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
                  <td>{row.day}</td>
                  <td>{row.event_key}</td>
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
