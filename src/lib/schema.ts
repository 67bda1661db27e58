// The one schema library (TypeBox: JSON Schema with static types, compiled checks) for the
// config and every HTTP body the gateway reads. This module adds what both need on top of it:
// durations in src/lib/duration.ts's grammar, defaults that apply only to absent keys, and
// problems worded the Gatehouse way ("<key.path> must be ..., got ...") with their key path, so
// the config can say file:line and an HTTP refusal names the field.
import { Kind, Type, TypeRegistry, type Static, type StaticDecode, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { GatehouseError, type ErrorCode } from '../errors.js';
import { formatDuration, parseDuration } from './duration.js';

export { Type, type Static, type StaticDecode, type TSchema };

export type Path = readonly (string | number)[];

export interface Issue {
  path: Path;
  message: string;
}

/** How a value is named in a problem: its kind, and short scalars as JSON. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  const json = JSON.stringify(value) ?? typeof value;
  return `${typeof value} ${json.length > 80 ? `${json.slice(0, 80)}…` : json}`;
}

/** `a.b[0].c`, as problems name keys. */
export function formatPath(p: Path): string {
  return p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('') || '(top level)';
}

// ---- durations

const DURATION = 'GatehouseDuration';

interface DurationSchema extends TSchema {
  minMs?: number;
  maxMs?: number;
}

/** A duration's milliseconds: the grammar of src/lib/duration.ts, or a bare number of seconds (configs written before units). */
function durationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? Math.round(value * 1000) : undefined;
  return typeof value === 'string' ? parseDuration(value) : undefined;
}

function durationProblem(schema: DurationSchema, value: unknown): string | undefined {
  const ms = durationMs(value);
  if (ms === undefined) return `must be a duration like 300s, 15m or 24h, got ${describe(value)}`;
  if (schema.minMs !== undefined && ms < schema.minMs) return `must be at least ${schema.minMs / 1000}s`;
  if (schema.maxMs !== undefined && ms > schema.maxMs) return `must be at most ${schema.maxMs / 1000}s`;
  return undefined;
}

if (!TypeRegistry.Has(DURATION)) TypeRegistry.Set<DurationSchema>(DURATION, (schema, value) => durationProblem(schema, value) === undefined);

/** A duration like 500ms, 90s, 15m, 24h or 7d; decodes to milliseconds. `fallback` (ms) applies when the key is absent. */
export function Duration(opts: { minMs?: number; maxMs?: number } = {}, fallback?: number) {
  const encoded = Type.Unsafe<string | number>({
    [Kind]: DURATION,
    ...opts,
    ...(fallback !== undefined ? { default: formatDuration(fallback) } : {}),
  });
  return Type.Transform(encoded)
    .Decode((v) => durationMs(v)!)
    .Encode((ms) => formatDuration(ms));
}

// ---- defaults

/** The variant of a union of maps told apart by a literal `kind` (undefined: not such a union, or no match). */
function variantOf(schema: TSchema, value: unknown): TSchema | undefined {
  const kinds = kindsOf(schema);
  if (kinds === undefined || value === null || typeof value !== 'object') return undefined;
  const kind = (value as Record<string, unknown>).kind;
  return (schema.anyOf as TSchema[]).find((v) => (v.properties as Record<string, TSchema>).kind!.const === kind);
}

/** The `kind` literals of a union of maps discriminated by kind. */
function kindsOf(schema: TSchema): string[] | undefined {
  if (schema[Kind] !== 'Union') return undefined;
  const variants = schema.anyOf as TSchema[];
  const kinds = variants.map((v) => (v[Kind] === 'Object' ? (v.properties as Record<string, TSchema | undefined>).kind?.const as unknown : undefined));
  return kinds.every((k): k is string => typeof k === 'string') ? kinds : undefined;
}

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Fills absent keys from their schema's `default` (a copy), at every depth, in place. Unlike
 * TypeBox's Value.Default, a default never merges into a map that is there: a section given
 * is taken as given, and only its own absent keys get their own defaults.
 */
export function applyDefaults(schema: TSchema, value: unknown): unknown {
  if (schema[Kind] === 'Object' && isMap(value)) {
    for (const [key, prop] of Object.entries(schema.properties as Record<string, TSchema>)) {
      if (value[key] === undefined && 'default' in prop) value[key] = structuredClone(prop.default);
      if (value[key] !== undefined) value[key] = applyDefaults(prop, value[key]);
    }
  } else if (schema[Kind] === 'Array' && Array.isArray(value)) {
    value.forEach((item, i) => { value[i] = applyDefaults(schema.items as TSchema, item); });
  } else if (schema[Kind] === 'Record' && isMap(value)) {
    const [item] = Object.values(schema.patternProperties as Record<string, TSchema>);
    for (const key of Object.keys(value)) value[key] = applyDefaults(item!, value[key]);
  } else {
    const variant = variantOf(schema, value);
    if (variant !== undefined) return applyDefaults(variant, value);
  }
  return value;
}

/** Drops map entries whose value is null (`key:` with nothing after it in YAML): absent, so defaults apply. */
export function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (!isMap(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = dropNulls(v);
  return out;
}

// ---- problems

/** JSON pointer -> key path; an index into a list becomes a number. */
function toPath(root: unknown, pointer: string, base: Path): (string | number)[] {
  const out: (string | number)[] = [...base];
  let at: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(at)) {
      out.push(Number(seg));
      at = at[Number(seg)];
    } else {
      out.push(seg);
      at = isMap(at) ? at[seg] : undefined;
    }
  }
  return out;
}

function literals(schema: TSchema): unknown[] | undefined {
  if (schema[Kind] === 'Literal') return [schema.const as unknown];
  if (schema[Kind] !== 'Union') return undefined;
  const vs = (schema.anyOf as TSchema[]).map((v) => (v[Kind] === 'Literal' ? v.const as unknown : undefined));
  return vs.every((v) => v !== undefined) ? vs : undefined;
}

function message(e: ValueError): string {
  const s = e.schema;
  const v = e.value;
  switch (e.type) {
    case ValueErrorType.String: return `must be a string, got ${describe(v)}`;
    case ValueErrorType.StringMinLength: return s.minLength === 1 ? 'must not be empty' : `must be at least ${String(s.minLength)} characters`;
    case ValueErrorType.StringMaxLength: return `must be at most ${String(s.maxLength)} characters`;
    case ValueErrorType.StringPattern: return `must be ${typeof s.hint === 'string' ? s.hint : `like /${String(s.pattern)}/`}`;
    case ValueErrorType.Integer: return `must be an integer, got ${describe(v)}`;
    case ValueErrorType.Number: return `must be a number, got ${describe(v)}`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum: return `must be at least ${String(s.minimum)}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum: return `must be at most ${String(s.maximum)}`;
    case ValueErrorType.Boolean: return `must be true or false, got ${describe(v)}`;
    case ValueErrorType.Object: return `must be a map, got ${describe(v)}`;
    case ValueErrorType.ObjectRequiredProperty: return 'is required';
    case ValueErrorType.ObjectAdditionalProperties: return `unknown key (allowed here: ${Object.keys(s.properties as object).join(', ')})`;
    case ValueErrorType.Array: return `must be a list, got ${describe(v)}`;
    case ValueErrorType.ArrayMinItems: return `must have at least ${String(s.minItems)} item(s)`;
    case ValueErrorType.ArrayMaxItems: return `must have at most ${String(s.maxItems)} item(s)`;
    case ValueErrorType.Kind: return s[Kind] === DURATION ? durationProblem(s, v) ?? e.message : e.message;
    default: {
      const ls = literals(s);
      return ls !== undefined ? `must be one of ${ls.map(String).join(', ')}, got ${describe(v)}` : e.message;
    }
  }
}

/** Every problem of `value` against `schema`, one per key path (the first found), in the Gatehouse wording. */
export function issuesOf(schema: TSchema, value: unknown, base: Path = []): Issue[] {
  const out: Issue[] = [];
  const seen = new Set<string>();
  const add = (path: Path, msg: string): void => {
    const id = JSON.stringify(path);
    if (seen.has(id)) return;
    seen.add(id);
    out.push({ path, message: msg });
  };
  for (const e of Value.Errors(schema, value)) {
    const path = toPath(value, e.path, base);
    // an absent required key is said once ("is required"), not again as "must be a string, got undefined"
    if (e.value === undefined && e.type !== ValueErrorType.ObjectRequiredProperty) continue;
    const kinds = kindsOf(e.schema);
    if (kinds !== undefined) {
      // a map chosen by its kind: name the kind, or the chosen shape's own problems
      if (!isMap(e.value)) add(path, `must be a map, got ${describe(e.value)}`);
      else {
        const variant = variantOf(e.schema, e.value);
        if (variant === undefined) add([...path, 'kind'], `must be one of ${kinds.join(', ')}, got ${describe(e.value.kind)}`);
        else for (const i of issuesOf(variant, e.value, path)) add(i.path, i.message);
      }
      continue;
    }
    add(path, message(e));
  }
  return out;
}

// ---- HTTP bodies

export interface BodyReader<T extends TSchema> {
  readonly schema: T;
  /** The decoded body, or a 400 naming the first problem. */
  read(body: unknown): StaticDecode<T>;
}

/**
 * A compiled reader for one request body: a body that does not fit is refused with `code`
 * (ERR_BAD_REQUEST by default), naming the field and what was expected, never with a 500.
 */
export function bodyReader<T extends TSchema>(schema: T, code: ErrorCode = 'ERR_BAD_REQUEST'): BodyReader<T> {
  const check: TypeCheck<T> = TypeCompiler.Compile(schema);
  return {
    schema,
    read(body) {
      if (check.Check(body)) return check.Decode(body);
      const [first] = issuesOf(schema, body);
      const what = first === undefined ? 'the body does not fit' : first.path.length === 0 ? `the body ${first.message}` : `${formatPath(first.path)} ${first.message}`;
      throw new GatehouseError(code, what);
    },
  };
}
