/**
 * Parses the PostgREST query grammar supabase-js sends (select, filters, or/and, order,
 * limit/offset) into SQL fragments. Identifiers are checked against the relation's columns
 * and quoted; every value becomes a bound parameter. Anything outside the supported subset
 * is refused with a 400 that names it.
 */
import { postgrestError, unsupported } from "./postgrest-errors.ts";
import { quoteIdent, type Relation } from "./schema-cache.ts";

/** Collects bound parameters and hands out their `$n` placeholders. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** Resolves a type name from a cast to the name Postgres formats (a catalog round trip). */
export type TypeResolver = (name: string) => Promise<string | undefined>;

export const RESERVED_PARAMS = new Set(["select", "order", "limit", "offset", "or", "and", "not.or", "not.and", "on_conflict", "columns"]);

function parseError(message: string, details: string | null = null): Error {
  return postgrestError(400, "PGRST100", message, details);
}

/** Splits on a separator at the top level (outside parentheses and double quotes). */
export function splitTopLevel(input: string, separator = ","): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = "";
  for (let i = 0; i < input.length; i++) {
    const ch = input[i]!;
    if (ch === "\\" && quoted && i + 1 < input.length) {
      current += ch + input[i + 1];
      i++;
      continue;
    }
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === "(") depth++;
    else if (!quoted && ch === ")") depth--;
    if (ch === separator && depth === 0 && !quoted) {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  if (quoted || depth !== 0) throw parseError(`failed to parse: unbalanced quotes or parentheses in "${input}"`);
  parts.push(current);
  return parts;
}

function unquote(value: string): string {
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    return value.slice(1, -1).replace(/\\(.)/g, "$1");
  }
  return value;
}

function column(relation: Relation, rawName: string): string {
  const name = unquote(rawName.trim());
  if (name.includes("->")) throw unsupported(`JSON path "${name}"`);
  if (!relation.columns.has(name)) {
    throw postgrestError(400, "42703", `column ${relation.name}.${name} does not exist`);
  }
  return quoteIdent(name);
}

// ---------------------------------------------------------------------------
// select
// ---------------------------------------------------------------------------

/** The select list as SQL (`*` when absent). */
export async function parseSelect(relation: Relation, select: string | null, resolveType: TypeResolver): Promise<string> {
  if (select === null || select.trim() === "" || select.trim() === "*") return "*";
  const items: string[] = [];
  for (const rawItem of splitTopLevel(select)) {
    const item = rawItem.trim();
    if (item === "") continue;
    if (item === "*") {
      items.push("*");
      continue;
    }
    if (item.startsWith("...")) throw unsupported(`spread "${item}"`);
    if (item.includes("(")) throw unsupported(`resource embedding or aggregate "${item}"`);
    if (item.includes("->")) throw unsupported(`JSON path "${item}"`);
    const match = /^(?:([^:]+):(?!:))?([^:]+)(?:::(.+))?$/.exec(item);
    if (!match) throw parseError(`failed to parse select parameter (${item})`);
    const [, alias, name, cast] = match;
    const source = column(relation, name!);
    const outputName = quoteIdent(unquote((alias ?? name!).trim()));
    if (cast) {
      const type = await resolveType(cast.trim());
      if (!type) throw postgrestError(400, "42704", `type "${cast.trim()}" does not exist`);
      items.push(`cast(${source} as ${type}) as ${outputName}`);
    } else {
      items.push(alias ? `${source} as ${outputName}` : source);
    }
  }
  return items.length ? items.join(", ") : "*";
}

// ---------------------------------------------------------------------------
// filters
// ---------------------------------------------------------------------------

const COMPARISONS: Record<string, string> = { eq: "=", neq: "<>", gt: ">", gte: ">=", lt: "<", lte: "<=" };
const UNSUPPORTED_OPERATORS = new Set([
  "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj", "fts", "plfts", "phfts", "wfts", "match", "imatch", "isdistinct",
]);

/** Parses a PostgREST `in` list `(a,b,"c,d")` into its values. */
function parseList(value: string): string[] {
  if (!value.startsWith("(") || !value.endsWith(")")) throw parseError(`failed to parse filter (in.${value})`);
  const inner = value.slice(1, -1);
  if (inner.trim() === "") return [];
  return splitTopLevel(inner).map((part) => unquote(part));
}

/** One `[not.]operator.value` condition on a column. */
function condition(relation: Relation, rawColumn: string, expression: string, params: Params): string {
  if (rawColumn.includes(".") && !rawColumn.startsWith('"')) throw unsupported(`filter on an embedded resource "${rawColumn}"`);
  const target = column(relation, rawColumn);
  let negate = false;
  let rest = expression;
  if (rest.startsWith("not.")) {
    negate = true;
    rest = rest.slice(4);
  }
  const dot = rest.indexOf(".");
  if (dot < 0) throw parseError(`failed to parse filter (${expression})`);
  const operatorWithModifier = rest.slice(0, dot);
  const value = rest.slice(dot + 1);
  const operatorMatch = /^([a-z]+)(?:\((.*)\))?$/.exec(operatorWithModifier);
  if (!operatorMatch) throw parseError(`failed to parse filter (${expression})`);
  const [, operator, modifier] = operatorMatch;
  if (modifier !== undefined) throw unsupported(`operator modifier "${operatorWithModifier}"`);
  let sql: string;
  if (operator! in COMPARISONS) {
    sql = `${target} ${COMPARISONS[operator!]} ${params.add(value)}`;
  } else if (operator === "like" || operator === "ilike") {
    sql = `${target}::text ${operator} ${params.add(value.replaceAll("*", "%"))}`;
  } else if (operator === "is") {
    const keyword = value.toLowerCase();
    const allowed: Record<string, string> = { null: "null", not_null: "not null", true: "true", false: "false", unknown: "unknown" };
    if (!(keyword in allowed)) throw parseError(`failed to parse filter (is.${value})`);
    sql = `${target} is ${allowed[keyword]}`;
  } else if (operator === "in") {
    const values = parseList(value);
    sql = values.length === 0 ? "false" : `${target} = any(${params.add(values)})`;
  } else if (UNSUPPORTED_OPERATORS.has(operator!)) {
    throw unsupported(`filter operator "${operator}"`);
  } else {
    throw parseError(`failed to parse filter (${expression})`, `unknown operator "${operator}"`);
  }
  return negate ? `not (${sql})` : sql;
}

/** A logic tree `(a.eq.1,and(b.gt.2,c.is.null))` joined with `and` / `or`. */
function logicTree(relation: Relation, joiner: "and" | "or", body: string, params: Params): string {
  if (!body.startsWith("(") || !body.endsWith(")")) throw parseError(`failed to parse logic tree (${body})`);
  const parts = splitTopLevel(body.slice(1, -1));
  const sql = parts.map((rawPart) => {
    const part = rawPart.trim();
    const nested = /^(not\.)?(and|or)(\(.*\))$/s.exec(part);
    if (nested) {
      const inner = logicTree(relation, nested[2] as "and" | "or", nested[3]!, params);
      return nested[1] ? `not ${inner}` : inner;
    }
    const firstDot = part.startsWith('"') ? part.indexOf('"', 1) + 1 : part.indexOf(".");
    if (firstDot <= 0 || part[firstDot] !== ".") throw parseError(`failed to parse logic tree (${part})`);
    return condition(relation, part.slice(0, firstDot), part.slice(firstDot + 1), params);
  });
  return `(${sql.join(` ${joiner} `)})`;
}

/** The WHERE conditions from the query string (everything that is not a reserved parameter). */
export function parseFilters(relation: Relation, query: URLSearchParams, params: Params, skip: Set<string> = new Set()): string[] {
  const conditions: string[] = [];
  for (const [key, value] of query) {
    if (skip.has(key)) continue;
    if (key === "or" || key === "and" || key === "not.or" || key === "not.and") {
      const negated = key.startsWith("not.");
      const tree = logicTree(relation, negated ? (key.slice(4) as "and" | "or") : (key as "and" | "or"), value, params);
      conditions.push(negated ? `not ${tree}` : tree);
    } else if (/^[a-z_]+\.(or|and)$/i.test(key)) {
      throw unsupported(`logic filter on an embedded resource "${key}"`);
    } else if (!RESERVED_PARAMS.has(key)) {
      conditions.push(condition(relation, key, value, params));
    } else if (key === "on_conflict" || key === "columns") {
      throw unsupported(`"${key}" (table writes)`);
    }
  }
  return conditions;
}

// ---------------------------------------------------------------------------
// order, limit, offset
// ---------------------------------------------------------------------------

export function parseOrder(relation: Relation, order: string | null): string | undefined {
  if (order === null || order.trim() === "") return undefined;
  return splitTopLevel(order)
    .map((raw) => {
      const term = raw.trim();
      if (term.includes("(")) throw unsupported(`ordering by an embedded resource "${term}"`);
      const parts = term.split(".");
      const name = parts.shift()!;
      let direction = "asc";
      let nulls: string | undefined;
      for (const modifier of parts) {
        if (modifier === "asc" || modifier === "desc") direction = modifier;
        else if (modifier === "nullsfirst") nulls = "nulls first";
        else if (modifier === "nullslast") nulls = "nulls last";
        else throw parseError(`failed to parse order (${term})`);
      }
      return `${column(relation, name)} ${direction}${nulls ? ` ${nulls}` : ""}`;
    })
    .join(", ");
}

export function parseNonNegativeInteger(name: string, value: string | null): number | undefined {
  if (value === null) return undefined;
  if (!/^\d+$/.test(value)) throw parseError(`failed to parse ${name} parameter (${value})`);
  return Number(value);
}

/** The requested window: the intersection of the Range header and limit/offset. */
export function requestedRange(rangeHeader: string | undefined, limit: number | undefined, offset: number | undefined): { from: number; to?: number } {
  let from = offset ?? 0;
  let to = limit === undefined ? undefined : from + limit - 1;
  if (rangeHeader) {
    const match = /^(?:items=)?(\d+)-(\d*)$/.exec(rangeHeader.trim());
    if (!match) throw postgrestError(416, "PGRST103", "Requested range not satisfiable", `Invalid Range header: ${rangeHeader}`);
    const rangeFrom = Number(match[1]);
    const rangeTo = match[2] === "" ? undefined : Number(match[2]);
    if (rangeTo !== undefined && rangeTo < rangeFrom) {
      throw postgrestError(416, "PGRST103", "Requested range not satisfiable", `Invalid Range header: ${rangeHeader}`);
    }
    from = Math.max(from, rangeFrom);
    if (rangeTo !== undefined) to = to === undefined ? rangeTo : Math.min(to, rangeTo);
  }
  return { from, to };
}
