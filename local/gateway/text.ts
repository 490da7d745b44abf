/**
 * Text that cannot reach Postgres intact. UTF-8 has no encoding for a lone UTF-16 surrogate
 * (JSON allows one, as `"\ud800"`), so encoding it silently substitutes U+FFFD and two
 * different inputs become one; Postgres text and jsonb refuse a NUL outright.
 */

/** With the `u` flag a surrogate matches only when it is not half of a pair. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** True when the string holds a UTF-16 surrogate without its other half. */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/** True when the string holds a NUL character. */
export function hasNul(text: string): boolean {
  return text.includes("\u0000");
}
