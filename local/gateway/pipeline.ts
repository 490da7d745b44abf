/**
 * Sends several parameterised statements to Postgres in one round trip (the extended query
 * protocol's pipelining: Parse/Bind/Describe/Execute for each, then a single Sync), as
 * PostgREST does with its pipeline. A request's BEGIN, request settings, query and COMMIT
 * then cost one round trip instead of four; values stay bound parameters.
 *
 * node-postgres runs one query at a time; a `Submittable` is its documented hook for
 * writing protocol messages directly (pg-cursor is built on it).
 */
import type pg from "pg";

export interface Statement {
  text: string;
  values?: unknown[];
}

export interface StatementResult {
  columns: string[];
  /** Text-format values, as Postgres sent them. */
  rows: Array<Array<string | null>>;
}

interface FieldDescription {
  name: string;
}

/** A value as the text Postgres parses for a parameter (arrays as array literals). */
export function toParameterText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) {
    const items = value.map((item) => {
      const text = toParameterText(item);
      return text === null ? "NULL" : `"${text.replace(/(["\\])/g, "\\$1")}"`;
    });
    return `{${items.join(",")}}`;
  }
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

class Pipeline implements pg.Submittable {
  private readonly results: StatementResult[] = [];
  private current: StatementResult | undefined;
  private finished = false;

  constructor(
    private readonly statements: Statement[],
    private readonly done: (error: Error | undefined, results: StatementResult[]) => void,
  ) {}

  submit(connection: pg.Connection): void {
    const stream = connection.stream as pg.Connection["stream"] & { cork?: () => void; uncork?: () => void };
    stream.cork?.();
    try {
      for (const statement of this.statements) {
        connection.parse({ text: statement.text, name: "", types: [] }, true);
        connection.bind({ portal: "", statement: "", values: (statement.values ?? []).map(toParameterText) }, true);
        connection.describe({ type: "P", name: "" }, true);
        connection.execute({ portal: "" }, true);
      }
      connection.sync();
    } finally {
      stream.uncork?.();
    }
  }

  handleRowDescription(message: { fields: FieldDescription[] }): void {
    this.current = { columns: message.fields.map((f) => f.name), rows: [] };
  }

  handleDataRow(message: { fields: Array<string | null> }): void {
    this.current?.rows.push(message.fields);
  }

  handleCommandComplete(): void {
    this.results.push(this.current ?? { columns: [], rows: [] });
    this.current = undefined;
  }

  handleEmptyQuery(): void {
    this.results.push({ columns: [], rows: [] });
  }

  handlePortalSuspended(): void {}

  handleError(error: Error): void {
    // After an error Postgres skips to the Sync and sends nothing but ReadyForQuery, and
    // node-postgres detaches this query at once (the next query waits for that
    // ReadyForQuery), so the outcome is known now.
    this.finish(error);
  }

  handleReadyForQuery(): void {
    this.finish(undefined);
  }

  private finish(error: Error | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.done(error, this.results);
  }
}

/** Runs the statements in one round trip; rejects with the first error Postgres reported. */
export function runPipeline(client: pg.ClientBase, statements: Statement[]): Promise<StatementResult[]> {
  return new Promise((resolve, reject) => {
    client.query(new Pipeline(statements, (error, results) => (error ? reject(error) : resolve(results))));
  });
}
