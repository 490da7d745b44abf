import Papa from "papaparse";

/**
 * Rows as CSV (RFC 4180, CRLF line ends, a header of the rows' keys) by papaparse. Fields a
 * spreadsheet would run as a formula (starting with = + - @, tab or CR) are escaped, since
 * descriptions and adjustment reasons are typed by people (OWASP's CSV injection advice).
 */
export function toCsv(rows: Record<string, unknown>[]): string {
  return Papa.unparse(rows, { escapeFormulae: true, newline: "\r\n" });
}
