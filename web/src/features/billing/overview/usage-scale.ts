/**
 * The usage chart's axes as plain arithmetic, so they are tested without rendering: a y axis
 * that ends on a round figure above the peak, and which days get a date under the x axis.
 */

/**
 * Round y-axis ticks from 0 up to at least `peak`: steps of 1, 2 or 5 times a power of ten, at
 * most `maxSteps` of them, so the labels read as figures people use ("0, 50, 100, 150").
 * A peak of 0 still gets an axis (0 and 1), so an empty day has a scale to sit on.
 */
export function usageTicks(peak: number, maxSteps = 4): number[] {
  const top = Math.max(1, Math.ceil(peak));
  const rough = top / maxSteps;
  const power = 10 ** Math.floor(Math.log10(rough));
  // Whole credits only: a step below 1 would label the axis with fractions of a credit.
  const step = Math.max(1, [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough)!);
  const ticks: number[] = [];
  for (let value = 0; ticks.length === 0 || ticks[ticks.length - 1]! < top; value += step) ticks.push(value);
  return ticks;
}

/**
 * Which of `days` bars carry a date under the axis: the first, the last and every `every`-th
 * between, leaving out one that would sit too close to the last to have room for its label.
 */
export function dateTickIndices(days: number, every = 7): number[] {
  if (days <= 0) return [];
  const last = days - 1;
  const indices: number[] = [];
  for (let index = 0; index < last; index += every) if (index === 0 || last - index >= every / 2) indices.push(index);
  indices.push(last);
  return indices;
}
