import { AxisBottom, AxisLeft } from "@visx/axis";
import { Group } from "@visx/group";
import { scaleBand, scaleLinear, scaleOrdinal } from "@visx/scale";
import { BarStack } from "@visx/shape";
import { useId } from "react";

// Colour tokens from styles.css, so charts follow the light or dark theme.
export const CHART_COLORS = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => `var(--chart-${n})`);

export interface ChartRow {
  /** The bar's label (a day, a status, an organization). */
  category: string;
  /** One value per series key; missing keys count as 0. */
  values: Record<string, number>;
}

export interface BarChartProps {
  title: string;
  /** What the chart shows, for screen readers (the table below holds every figure). */
  description: string;
  rows: ChartRow[];
  /** The stacked series, bottom first; one series draws plain bars. */
  series: { key: string; label: string }[];
  formatCategory?: (category: string) => string;
  formatValue?: (value: number) => string;
  /** The table's first column heading. */
  categoryLabel: string;
  /** Drawing width in SVG units (it scales to its card); wide cards use more. */
  width?: number;
}

const HEIGHT = 220;
/** Tables longer than this (a month of days; not the top ten) start folded; they are still there for screen readers and keyboards. */
const OPEN_TABLE_ROWS = 10;
const MARGIN = { top: 10, right: 10, bottom: 40, left: 56 };

/**
 * A (stacked) bar chart drawn with visx as plain SVG, with its figures as a table beneath:
 * the SVG is one labelled image whose bars each carry a <title>, and the table is what
 * screen readers and keyboards use, so nothing is only in the picture.
 */
export function BarChart({ title, description, rows, series, formatCategory = (c) => c, formatValue = String, categoryLabel, width: WIDTH = 640 }: BarChartProps) {
  const id = useId();
  const keys = series.map((s) => s.key);
  const totals = rows.map((row) => keys.reduce((sum, key) => sum + (row.values[key] ?? 0), 0));
  const innerWidth = WIDTH - MARGIN.left - MARGIN.right;
  const innerHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = scaleBand<string>({ domain: rows.map((r) => r.category), range: [0, innerWidth], padding: 0.2 });
  const y = scaleLinear<number>({ domain: [0, Math.max(1, ...totals)], range: [innerHeight, 0], nice: true });
  const color = scaleOrdinal<string, string>({ domain: keys, range: CHART_COLORS });
  const data = rows.map((row) => ({ category: row.category, ...Object.fromEntries(keys.map((k) => [k, row.values[k] ?? 0])) }));
  // Every label would crowd a month of days: about eight along the axis.
  const every = Math.max(1, Math.ceil(rows.length / 8));

  return (
    <figure className="op-chart">
      <figcaption id={`${id}-title`}>
        <strong>{title}</strong>
      </figcaption>
      {series.length > 1 ? (
        <ul className="legend" aria-label={`${title}: legend`}>
          {series.map((s) => (
            <li key={s.key}>
              <span className="swatch" style={{ background: color(s.key) }} aria-hidden="true" />
              {s.label}
            </li>
          ))}
        </ul>
      ) : null}
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby={`${id}-title ${id}-desc`}>
        <desc id={`${id}-desc`}>{description} The figures are in the table below.</desc>
        <Group left={MARGIN.left} top={MARGIN.top}>
          <BarStack data={data} keys={keys} x={(d) => d.category} xScale={x} yScale={y} color={color}>
            {(stacks) =>
              stacks.map((stack) =>
                stack.bars.map((bar) =>
                  bar.height > 0 ? (
                    <rect key={`${stack.index}-${bar.index}`} x={bar.x} y={bar.y} width={bar.width} height={bar.height} style={{ fill: bar.color }}>
                      <title>{`${formatCategory(rows[bar.index]!.category)}, ${series[stack.index]!.label}: ${formatValue(rows[bar.index]!.values[stack.key] ?? 0)}`}</title>
                    </rect>
                  ) : null,
                ),
              )
            }
          </BarStack>
          {/* Counts and minor units are whole numbers: no 0.5-subscription ticks. */}
          <AxisLeft scale={y} tickValues={y.ticks(4).filter(Number.isInteger)} tickFormat={(v) => formatValue(Number(v))} />
          <AxisBottom
            top={innerHeight}
            scale={x}
            tickFormat={(c) => (rows.findIndex((r) => r.category === c) % every === 0 ? formatCategory(c) : "")}
          />
        </Group>
      </svg>
      <details className="table-wrap" open={rows.length <= OPEN_TABLE_ROWS}>
        <summary>Figures ({rows.length} {rows.length === 1 ? "row" : "rows"})</summary>
        <table>
          <caption className="visually-hidden">{title}: the figures</caption>
          <thead>
            <tr>
              <th scope="col">{categoryLabel}</th>
              {series.map((s) => (
                <th scope="col" key={s.key} className="num">{s.label}</th>
              ))}
              {series.length > 1 ? <th scope="col" className="num">Total</th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((row, index) => (
              <tr key={row.category}>
                <th scope="row">{formatCategory(row.category)}</th>
                {series.map((s) => (
                  <td key={s.key} className="num">{formatValue(row.values[s.key] ?? 0)}</td>
                ))}
                {series.length > 1 ? <td className="num">{formatValue(totals[index]!)}</td> : null}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
