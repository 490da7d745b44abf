/**
 * What the REST API may reach: the tables, views and functions of the exposed schema, read
 * from pg_catalog. Every identifier in a request is looked up here before it reaches SQL,
 * so nothing outside `public` is reachable and no name is ever spliced in unchecked.
 */
import type pg from "pg";

export const EXPOSED_SCHEMA = "public";

export interface Relation {
  name: string;
  /** Column name -> SQL type as Postgres formats it. */
  columns: Map<string, string>;
}

export interface FunctionArgument {
  name: string;
  type: string;
  hasDefault: boolean;
}

export interface ExposedFunction {
  name: string;
  /** Input arguments in declaration order. */
  args: FunctionArgument[];
  returnsSet: boolean;
  /** Returns a row type or `returns table (...)`. */
  returnsComposite: boolean;
  returnsVoid: boolean;
  /** `i` immutable, `s` stable, `v` volatile. */
  volatility: "i" | "s" | "v";
}

interface ColumnRow {
  relation: string;
  column: string;
  type: string;
}

interface FunctionRow {
  name: string;
  arg_names: string[] | null;
  arg_modes: string[] | null;
  arg_types: string[];
  default_count: number;
  returns_set: boolean;
  returns_composite: boolean;
  returns_void: boolean;
  volatility: "i" | "s" | "v";
}

/** Quotes an identifier that came from the catalog. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export class SchemaCache {
  private relations = new Map<string, Relation>();
  private functions = new Map<string, ExposedFunction[]>();
  private loadedAt = 0;
  private loading: Promise<void> | undefined;

  constructor(private readonly pool: pg.Pool) {}

  /** Reloads the catalog (at most once per second when called for an unknown name). */
  async reload(force = false): Promise<void> {
    if (!force && Date.now() - this.loadedAt < 1000) return;
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    await this.loading;
  }

  private async load(): Promise<void> {
    const client = await this.pool.connect();
    try {
      const columns = await client.query<ColumnRow>(
        `select c.relname as relation, a.attname as column, pg_catalog.format_type(a.atttypid, a.atttypmod) as type
           from pg_catalog.pg_class c
           join pg_catalog.pg_namespace n on n.oid = c.relnamespace
           join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
          where n.nspname = $1 and c.relkind in ('r', 'v', 'm', 'f', 'p')
          order by c.relname, a.attnum`,
        [EXPOSED_SCHEMA],
      );
      const functions = await client.query<FunctionRow>(
        `select p.proname as name,
                p.proargnames as arg_names,
                p.proargmodes::text[] as arg_modes,
                array(select pg_catalog.format_type(t.oid, null)
                        from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as u(oid, i)
                        join pg_catalog.pg_type t on t.oid = u.oid
                       order by u.i) as arg_types,
                p.pronargdefaults as default_count,
                p.proretset as returns_set,
                (rt.typtype = 'c' or rt.oid = 'pg_catalog.record'::pg_catalog.regtype) as returns_composite,
                rt.oid = 'pg_catalog.void'::pg_catalog.regtype as returns_void,
                p.provolatile as volatility
           from pg_catalog.pg_proc p
           join pg_catalog.pg_namespace n on n.oid = p.pronamespace
           join pg_catalog.pg_type rt on rt.oid = p.prorettype
          where n.nspname = $1 and p.prokind = 'f'`,
        [EXPOSED_SCHEMA],
      );
      const relations = new Map<string, Relation>();
      for (const row of columns.rows) {
        let relation = relations.get(row.relation);
        if (!relation) relations.set(row.relation, (relation = { name: row.relation, columns: new Map() }));
        relation.columns.set(row.column, row.type);
      }
      const byName = new Map<string, ExposedFunction[]>();
      for (const row of functions.rows) {
        const fn = toExposedFunction(row);
        if (!fn) continue;
        byName.set(fn.name, [...(byName.get(fn.name) ?? []), fn]);
      }
      this.relations = relations;
      this.functions = byName;
      this.loadedAt = Date.now();
    } finally {
      client.release();
    }
  }

  async relation(name: string): Promise<Relation | undefined> {
    if (this.loadedAt === 0) await this.reload(true);
    if (!this.relations.has(name)) await this.reload();
    return this.relations.get(name);
  }

  async functionsNamed(name: string): Promise<ExposedFunction[]> {
    if (this.loadedAt === 0) await this.reload(true);
    if (!this.functions.has(name)) await this.reload();
    return this.functions.get(name) ?? [];
  }
}

/** Keeps the input arguments; a function with an unnamed input argument is not callable by name. */
function toExposedFunction(row: FunctionRow): ExposedFunction | undefined {
  const inputs: Array<{ name: string; type: string }> = [];
  row.arg_types.forEach((type, index) => {
    const mode = row.arg_modes?.[index] ?? "i";
    if (mode === "i" || mode === "b" || mode === "v") inputs.push({ name: row.arg_names?.[index] ?? "", type });
  });
  if (inputs.some((arg) => arg.name === "")) return undefined;
  const firstDefault = inputs.length - row.default_count;
  return {
    name: row.name,
    args: inputs.map((arg, index) => ({ ...arg, hasDefault: index >= firstDefault })),
    returnsSet: row.returns_set,
    returnsComposite: row.returns_composite,
    returnsVoid: row.returns_void,
    volatility: row.volatility,
  };
}
