/**
 * Stripe's request encoding: `application/x-www-form-urlencoded` bodies (and query strings)
 * with bracketed keys, `metadata[plan]=pro`, `line_items[0][price]=price_1`, `expand[]=x`,
 * decoded into nested objects and arrays, then validated with zod schemas whose failures
 * become Stripe-shaped 400s (`parameter_missing`, `parameter_unknown`, `parameter_invalid_*`).
 */
import { z } from "zod";
import { invalidRequest, StripeApiError } from "./errors.ts";

/** A decoded form value: strings at the leaves. */
export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormObject = { [key: string]: FormValue };

function splitKey(key: string): string[] {
  const first = key.indexOf("[");
  if (first < 0) return [key];
  const parts = [key.slice(0, first)];
  const re = /\[([^\]]*)\]/g;
  for (let m = re.exec(key.slice(first)); m; m = re.exec(key.slice(first))) parts.push(m[1] ?? "");
  return parts;
}

function isRecord(value: FormValue | undefined): value is { [key: string]: FormValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Objects whose keys are all indices (or `[]` appends) become arrays, in index order. */
function arraysFromIndices(value: FormValue): FormValue {
  if (Array.isArray(value)) return value.map(arraysFromIndices);
  if (!isRecord(value)) return value;
  const keys = Object.keys(value);
  const converted: { [key: string]: FormValue } = {};
  for (const key of keys) converted[key] = arraysFromIndices(value[key] as FormValue);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => converted[k] as FormValue);
  }
  return converted;
}

/** Decodes `URLSearchParams` with Stripe's bracket notation into a nested object. */
export function decodeForm(params: URLSearchParams): FormObject {
  const root: { [key: string]: FormValue } = {};
  for (const [key, value] of params) {
    const parts = splitKey(key);
    let node: { [key: string]: FormValue } = root;
    for (let i = 0; i < parts.length; i++) {
      let part = parts[i] as string;
      // `expand[]=a&expand[]=b`: an empty index appends.
      if (part === "") part = String(Object.keys(node).length);
      if (i === parts.length - 1) {
        node[part] = value;
      } else {
        const next = node[part];
        if (isRecord(next)) node = next;
        else {
          const created: { [key: string]: FormValue } = {};
          node[part] = created;
          node = created;
        }
      }
    }
  }
  return arraysFromIndices(root) as FormObject;
}

/** The bracketed name Stripe reports for a parameter path: `line_items[0][price]`. */
export function paramName(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p, i) => (i === 0 ? String(p) : `[${String(p)}]`)).join("");
}

function valueAt(data: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let node: unknown = data;
  for (const part of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

/** Parses `data` with `schema`, throwing the Stripe error the first issue maps to. */
export function parseParams<S extends z.ZodType>(schema: S, data: unknown): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw invalidRequest("Invalid request.");
  if (issue.code === "unrecognized_keys") {
    const param = paramName([...issue.path, issue.keys[0] ?? ""]);
    throw invalidRequest(`Received unknown parameter: ${param}`, { code: "parameter_unknown", param });
  }
  const param = paramName(issue.path);
  if (valueAt(data, issue.path) === undefined) {
    throw invalidRequest(`Missing required param: ${param}.`, { code: "parameter_missing", param });
  }
  const code = issue.message.startsWith("Invalid integer") ? "parameter_invalid_integer"
    : issue.message.startsWith("Invalid boolean") ? "parameter_invalid_empty"
    : issue.message.includes("empty string") ? "parameter_invalid_string_empty"
    : undefined;
  throw new StripeApiError(400, {
    type: "invalid_request_error",
    message: issue.message.includes(":") ? issue.message : `Invalid ${param}: ${issue.message}`,
    param,
    ...(code ? { code } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// Field types. Everything arrives as a string; these turn strings into what handlers use.
// ---------------------------------------------------------------------------------------------

/** A non-empty string. */
export const str = z.string().min(1, { message: "You passed an empty string, but this parameter does not accept an empty string" });

/** A non-negative integer written in decimal. */
export const int = z
  .string()
  .refine((s) => /^\d+$/.test(s), { message: "Invalid integer" })
  .transform((s) => Number(s))
  .refine((n) => Number.isSafeInteger(n), { message: "Invalid integer: too large" });

/** `true` / `false`. */
export const bool = z
  .enum(["true", "false"], { message: "Invalid boolean: expected true or false" })
  .transform((s) => s === "true");

/** `metadata[key]=value`; an empty value removes the key on update (as Stripe does). */
export const metadata = z.record(z.string(), z.string());

/** `expand[]=...`: accepted (the emulator expands the paths it knows) and otherwise ignored. */
export const expand = z.array(z.string()).optional();

/** Standard list pagination parameters. */
export const pagination = {
  limit: int.refine((n) => n >= 1 && n <= 100, { message: "Invalid integer: must be between 1 and 100" }).optional(),
  starting_after: str.optional(),
  ending_before: str.optional(),
  expand,
};

/** An enum with Stripe's wording for a bad value. */
export function oneOf<T extends string>(values: readonly [T, ...T[]]) {
  return z.enum(values, { message: `must be one of ${values.join(", ")}` });
}

/**
 * The body of an emulator-only endpoint (`/_emulator/...`): JSON, or a form as Stripe's API
 * takes. Malformed JSON is a 400.
 */
export async function readControlBody(c: { req: { header(name: string): string | undefined; text(): Promise<string> } }): Promise<unknown> {
  const text = await c.req.text();
  if (!text) return {};
  if ((c.req.header("content-type") ?? "").includes("application/json")) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw invalidRequest("Malformed JSON body.");
    }
  }
  return decodeForm(new URLSearchParams(text));
}
