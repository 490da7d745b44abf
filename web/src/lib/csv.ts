/**
 * Rows as CSV (RFC 4180, CRLF line ends, a header of the rows' keys) by papaparse. Fields a
 * spreadsheet would run as a formula (starting with = + - @, tab or CR) are escaped, since
 * descriptions and adjustment reasons are typed by people (OWASP's CSV injection advice);
 * numbers are left as numbers, so a debit of -600 stays a figure.
 *
 * papaparse is imported when a CSV is first asked for, so neither the members' first screen
 * nor a tab that merely offers a download carries it.
 */
export async function toCsv(rows: Record<string, unknown>[]): Promise<string> {
  const { default: Papa } = await import("papaparse");
  return Papa.unparse(rows, { escapeFormulae: true, newline: "\r\n" });
}

/** Saves CSV text as a file the browser downloads under `name`. */
export function downloadCsv(name: string, csv: string): void {
  const url = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  URL.revokeObjectURL(url);
}
