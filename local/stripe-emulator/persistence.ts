/**
 * The emulator's state on disk, so that Stripe ids a database holds stay valid across restarts.
 *
 * One file, JSON Lines. The first line is a header naming the format, its version and the
 * Stripe API version the objects are shaped for. Every later line is one batch of changes
 * `{"changes": [...], "meta"?: {...}}`, applied in order at start:
 *
 *   {"c": "<collection>", "k": "<id>", "v": <the entry>, "l"?: [[path, collection, id], ...]}
 *   {"c": "<collection>", "k": "<id>", "d": true}                  (the entry was deleted)
 *   {"c": "events", "k": "evt_...", "v": {"event", "deliveries", "nextAttemptAt"}}
 *   {"c": "eventDelivery", "k": "evt_...", "v": {"pending_webhooks", "deliveries", "nextAttemptAt"}}
 *
 * `l` lists where an entry holds another stored object by reference (a subscription item's
 * Price, a charge's Refunds): on load those places point at the live object again, as they
 * did in memory, so a later change to the Price shows through the subscription as before.
 *
 * Each request's changes are appended as one line and fsync'ed before its response is sent
 * (server.ts) and before any event it emitted is delivered (webhooks.ts); only the entries the
 * request read or wrote are examined (store.ts `ChangeTracker`). Webhook delivery outcomes are
 * saved with the next request or within 200 ms, whichever comes first (one lost to a crash
 * means a redelivery, which at-least-once delivery allows). A crash mid-append leaves at
 * most a last line without its newline: that request never got its answer, and the line is
 * dropped at the next start. When the appended lines outgrow the state they describe, the
 * file is compacted: the whole state is written to a temporary file, fsync'ed and renamed
 * over the old one, so a crash leaves either the old file or the new one, never a mix. The
 * same compaction runs at every start.
 *
 * A lock file beside the state file (`<file>.lock`, holding the owner's pid) keeps two
 * emulators from writing one file.
 */
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import Stripe from "stripe";
import type { Store, StoredEvent, TrackedMap } from "./store.ts";

const FORMAT = "stripe-emulator-state";
/**
 * Bump when the meaning of the file changes: its records, or the shape of stored objects in a
 * way old entries would not satisfy. An older or newer file is refused, never guessed at.
 */
const FORMAT_VERSION = 1;
/** Appended bytes allowed beyond the size of the last compacted file before compacting again. */
const MIN_JOURNAL_BYTES = 4 * 1024 * 1024;
/** Records per line in a compacted file (keeps lines, and the strings built for them, small). */
const RECORDS_PER_LINE = 200;

/** Where an entry holds another stored object: the path inside the entry, and whose object it is. */
type Link = [path: Array<string | number>, collection: string, key: string];

interface Header {
  format: string;
  version: number;
  stripe_api_version: string;
}

interface ChangeRecord {
  c: string;
  k: string;
  v?: unknown;
  l?: Link[];
  d?: true;
}

interface Batch {
  changes: ChangeRecord[];
  meta?: { invoiceSequence: number };
}

/** The state file cannot be used; the message says why and what to do, in one sentence. */
export class StateFileError extends Error {
  override name = "StateFileError";
}

/** Paths held open by this process, so a lock naming our own pid is told apart from a stale one. */
const heldHere = new Set<string>();

export class StateFile {
  private fd: number | null = null;
  /** The last saved JSON of every entry (value and links), per collection: what "changed" is measured against. */
  private saved = new Map<string, Map<string, string>>();
  private savedEvents = 0;
  private savedMeta = -1;
  private appendedBytes = 0;
  private compactedBytes = 0;
  /** Set when an append failed part-way: the next save rewrites the whole file instead. */
  private mustCompact = false;
  private closed = false;
  /** Events the file holds (the webhook dispatcher asks before delivering one). */
  private readonly savedEventSet = new WeakSet<StoredEvent>();
  private soon: NodeJS.Timeout | null = null;
  private readonly collections: ReadonlyMap<string, TrackedMap<unknown>>;

  private constructor(
    readonly file: string,
    private readonly store: Store,
  ) {
    this.collections = store.collections();
  }

  /**
   * Takes the file for this process, loads whatever it holds into `store` (which must be
   * empty), rewrites it compacted and turns change tracking on. A missing file is an empty
   * state. Throws `StateFileError` for a file from an incompatible version, a damaged file, or
   * a file another running emulator holds.
   */
  static open(file: string, store: Store): StateFile {
    const absolute = path.resolve(file);
    mkdirSync(path.dirname(absolute), { recursive: true });
    acquireLock(absolute);
    const state = new StateFile(absolute, store);
    try {
      removeLeftoverTemporaries(absolute);
      readState(absolute, store);
      state.compact();
    } catch (error) {
      releaseLock(absolute);
      throw error;
    }
    store.changes.enabled = true;
    return state;
  }

  /**
   * Saves every change since the last save: appends one line and fsyncs it. Does nothing when
   * nothing changed. Throws if the disk refuses; the changes stay pending for the next save.
   */
  save(): void {
    if (this.closed) return;
    if (this.mustCompact) {
      this.compact();
      return;
    }
    const { line, commit } = this.collectChanges();
    if (line === null) return;
    const bytes = Buffer.from(`${line}\n`, "utf8");
    try {
      writeFully(this.fd ?? -1, bytes);
      fsyncSync(this.fd ?? -1);
    } catch (error) {
      // A partial line may now end the file; appending after it would bury it mid-file.
      this.mustCompact = true;
      throw error;
    }
    commit();
    this.appendedBytes += bytes.length;
    if (this.appendedBytes > Math.max(MIN_JOURNAL_BYTES, this.compactedBytes)) this.compact();
  }

  /** Saves now unless the file already holds this event. */
  ensureSaved(stored: StoredEvent): void {
    if (!this.savedEventSet.has(stored)) this.save();
  }

  /** Saves within a fraction of a second (coalescing webhook delivery outcomes into one fsync). */
  saveSoon(): void {
    if (this.closed || this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      try {
        this.save();
      } catch (error) {
        console.error("[stripe-emulator] could not save webhook delivery outcomes (they are saved with the next change):", error);
      }
    }, 200);
    this.soon.unref();
  }

  /** Saves what is pending, stops tracking and lets another process take the file. */
  close(): void {
    if (this.closed) return;
    if (this.soon) clearTimeout(this.soon);
    this.soon = null;
    try {
      this.save();
    } finally {
      this.closed = true;
      this.store.changes.enabled = false;
      this.store.changes.clear();
      if (this.fd !== null) closeSync(this.fd);
      this.fd = null;
      releaseLock(this.file);
    }
  }

  /**
   * The changed entries as one line, and what to remember once it is durable. Entries are
   * examined only where the tracker saw a read or write; new ones are listed in insertion
   * order, so a reload keeps list order.
   */
  private collectChanges(): { line: string | null; commit: () => void } {
    const tracker = this.store.changes;
    const records: string[] = [];
    const remember: Array<() => void> = [];
    for (const [name, map] of this.collections) {
      const whole = tracker.touchedWhole.has(name);
      const keys = tracker.touched.get(name);
      if (!whole && !keys) continue;
      const saved = this.savedOf(name);
      for (const [key, value] of map.untrackedEntries()) {
        if (!whole && !keys?.has(key)) continue;
        const encoded = this.encode(value);
        if (saved.get(key) === encoded.signature) continue;
        records.push(putRecord(name, key, encoded));
        remember.push(() => saved.set(key, encoded.signature));
      }
      for (const key of whole ? [...saved.keys()] : (keys ?? [])) {
        if (map.peek(key) !== undefined || !saved.has(key)) continue;
        records.push(JSON.stringify({ c: name, k: key, d: true }));
        remember.push(() => saved.delete(key));
      }
    }
    const events = this.store.events;
    for (let i = this.savedEvents; i < events.length; i++) records.push(eventRecord(events[i] as StoredEvent));
    for (const stored of tracker.deliveries) {
      if (this.store.events.indexOf(stored, this.savedEvents) >= 0) continue; // already written whole above
      records.push(
        JSON.stringify({ c: "eventDelivery", k: stored.event.id, v: { pending_webhooks: stored.event.pending_webhooks, deliveries: stored.deliveries, nextAttemptAt: stored.nextAttemptAt } }),
      );
    }
    const metaChanged = this.store.invoiceSequence !== this.savedMeta;
    const eventCount = events.length;
    const meta = this.store.invoiceSequence;
    const commit = () => {
      for (const apply of remember) apply();
      for (let i = this.savedEvents; i < eventCount; i++) this.savedEventSet.add(events[i] as StoredEvent);
      this.savedEvents = eventCount;
      this.savedMeta = meta;
      tracker.clear();
    };
    if (records.length === 0 && !metaChanged) {
      commit();
      return { line: null, commit };
    }
    const metaPart = metaChanged ? `,"meta":${JSON.stringify({ invoiceSequence: meta })}` : "";
    return { line: `{"changes":[${records.join(",")}]${metaPart}}`, commit };
  }

  /**
   * Writes the whole state to `<file>.<pid>.tmp`, fsyncs it, renames it over the file and
   * fsyncs the directory, then appends to the new file from there on.
   */
  private compact(): void {
    const temporary = `${this.file}.${process.pid}.tmp`;
    const saved = new Map<string, Map<string, string>>();
    let bytes = 0;
    const fd = openSync(temporary, "w");
    try {
      const write = (line: string) => {
        const buffer = Buffer.from(`${line}\n`, "utf8");
        writeFully(fd, buffer);
        bytes += buffer.length;
      };
      const header: Header = { format: FORMAT, version: FORMAT_VERSION, stripe_api_version: Stripe.API_VERSION };
      write(JSON.stringify(header));
      let pending: string[] = [];
      const flush = () => {
        if (pending.length) write(`{"changes":[${pending.join(",")}]}`);
        pending = [];
      };
      const add = (record: string) => {
        pending.push(record);
        if (pending.length >= RECORDS_PER_LINE) flush();
      };
      for (const [name, map] of this.collections) {
        const signatures = new Map<string, string>();
        saved.set(name, signatures);
        for (const [key, value] of map.untrackedEntries()) {
          const encoded = this.encode(value);
          signatures.set(key, encoded.signature);
          add(putRecord(name, key, encoded));
        }
      }
      for (const stored of this.store.events) add(eventRecord(stored));
      flush();
      write(JSON.stringify({ changes: [], meta: { invoiceSequence: this.store.invoiceSequence } }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.file);
    syncDirectory(path.dirname(this.file));
    if (this.fd !== null) closeSync(this.fd);
    this.fd = openSync(this.file, "a");
    this.saved = saved;
    for (const stored of this.store.events) this.savedEventSet.add(stored);
    this.savedEvents = this.store.events.length;
    this.savedMeta = this.store.invoiceSequence;
    this.appendedBytes = 0;
    this.compactedBytes = bytes;
    this.mustCompact = false;
    this.store.changes.clear();
  }

  private savedOf(name: string): Map<string, string> {
    let saved = this.saved.get(name);
    if (!saved) this.saved.set(name, (saved = new Map()));
    return saved;
  }

  /** An entry's JSON and the stored objects it holds by reference. */
  private encode(value: unknown): Encoded {
    const json = JSON.stringify(value);
    const links = findLinks(value, (node) => {
      const owner = this.store.owners.get(node);
      // Only a reference to what is stored now counts: a replaced object is a copy by then.
      return owner && this.collections.get(owner.collection)?.peek(owner.key) === node ? owner : undefined;
    });
    const linksJson = links.length ? JSON.stringify(links) : "";
    return { json, linksJson, signature: `${json}\u0000${linksJson}` };
  }
}

interface Encoded {
  json: string;
  linksJson: string;
  /** What is compared to decide whether the entry changed. */
  signature: string;
}

function putRecord(collection: string, key: string, encoded: Encoded): string {
  const links = encoded.linksJson ? `,"l":${encoded.linksJson}` : "";
  return `{"c":${JSON.stringify(collection)},"k":${JSON.stringify(key)},"v":${encoded.json}${links}}`;
}

function eventRecord(stored: StoredEvent): string {
  return JSON.stringify({ c: "events", k: stored.event.id, v: { event: stored.event, deliveries: stored.deliveries, nextAttemptAt: stored.nextAttemptAt } });
}

/** Places inside `root` that hold another stored object (found by `ownerOf`), without descending into them. */
function findLinks(root: unknown, ownerOf: (node: object) => { collection: string; key: string } | undefined): Link[] {
  const links: Link[] = [];
  const trail: Array<string | number> = [];
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== "object") return;
    if (node !== root) {
      const owner = ownerOf(node);
      if (owner) {
        links.push([[...trail], owner.collection, owner.key]);
        return;
      }
    }
    if (Array.isArray(node)) {
      node.forEach((child, index) => {
        trail.push(index);
        walk(child);
        trail.pop();
      });
      return;
    }
    for (const [key, child] of Object.entries(node)) {
      trail.push(key);
      walk(child);
      trail.pop();
    }
  };
  walk(root);
  return links;
}

/**
 * Reads a state file into an empty store. A last line without its newline is a save that was
 * cut off by a crash (its request was never answered) and is dropped. Anything else that does
 * not parse, or a file of another format version or Stripe API version, is a `StateFileError`.
 */
export function readState(file: string, store: Store): void {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (text === "") return;
  const lines = text.split("\n");
  const torn = lines.pop();
  if (torn) console.warn(`[stripe-emulator] ${file}: dropped an unfinished last save (${torn.length} bytes) left by a crash.`);
  const headerLine = lines.shift();
  if (headerLine === undefined) return; // only a torn first line: nothing was ever saved
  let header: Partial<Header> | null = null;
  try {
    header = JSON.parse(headerLine) as Partial<Header>;
  } catch {
    header = null;
  }
  const fix = "run `npm run reset` (which wipes .local/, the database included) or delete the file to start with an empty Stripe";
  if (!header || header.format !== FORMAT) throw new StateFileError(`${file} is not a Stripe emulator state file; ${fix}.`);
  if (header.version !== FORMAT_VERSION || header.stripe_api_version !== Stripe.API_VERSION) {
    throw new StateFileError(
      `${file} was written by an incompatible Stripe emulator (state format ${String(header.version)}, Stripe API ${String(header.stripe_api_version)}; this one reads format ${FORMAT_VERSION}, Stripe API ${Stripe.API_VERSION}): ${fix}.`,
    );
  }
  const collections = store.collections();
  const linksOf = new Map<string, Map<string, Link[]>>();
  lines.forEach((line, index) => {
    let batch: Batch;
    try {
      batch = JSON.parse(line) as Batch;
      if (!Array.isArray(batch.changes)) throw new Error("no changes");
    } catch {
      throw new StateFileError(`${file} is damaged at line ${index + 2}; ${fix}.`);
    }
    for (const record of batch.changes) applyRecord(file, store, collections, linksOf, record, fix);
    if (batch.meta) store.invoiceSequence = batch.meta.invoiceSequence;
  });
  // References last, once every entry holds its final version.
  for (const [collection, entries] of linksOf) {
    for (const [key, links] of entries) {
      const entry = collections.get(collection)?.peek(key);
      for (const [where, targetCollection, targetKey] of links) {
        const target = collections.get(targetCollection)?.peek(targetKey);
        if (target !== undefined) setAt(entry, where, target);
      }
    }
  }
}

function applyRecord(
  file: string,
  store: Store,
  collections: ReadonlyMap<string, { set(key: string, value: unknown): unknown; delete(key: string): boolean }>,
  linksOf: Map<string, Map<string, Link[]>>,
  record: ChangeRecord,
  fix: string,
): void {
  if (record.c === "events") {
    const value = record.v as StoredEvent;
    const existing = store.eventsById.get(record.k);
    if (existing) Object.assign(existing, value);
    else {
      const stored: StoredEvent = { event: value.event, deliveries: value.deliveries, nextAttemptAt: value.nextAttemptAt };
      store.events.push(stored);
      store.eventsById.set(record.k, stored);
    }
    return;
  }
  if (record.c === "eventDelivery") {
    const value = record.v as { pending_webhooks: number; deliveries: StoredEvent["deliveries"]; nextAttemptAt: number | null };
    const existing = store.eventsById.get(record.k);
    if (!existing) throw new StateFileError(`${file} records a delivery of an unknown event ${record.k}; ${fix}.`);
    existing.event.pending_webhooks = value.pending_webhooks;
    existing.deliveries = value.deliveries;
    existing.nextAttemptAt = value.nextAttemptAt;
    return;
  }
  const map = collections.get(record.c);
  if (!map) throw new StateFileError(`${file} holds a collection this emulator does not know (${record.c}); ${fix}.`);
  let links = linksOf.get(record.c);
  if (!links) linksOf.set(record.c, (links = new Map()));
  if (record.d) {
    map.delete(record.k);
    links.delete(record.k);
    return;
  }
  map.set(record.k, record.v);
  if (record.l?.length) links.set(record.k, record.l);
  else links.delete(record.k);
}

function setAt(root: unknown, where: Array<string | number>, value: unknown): void {
  let node = root as Record<string | number, unknown> | undefined;
  for (const step of where.slice(0, -1)) node = node?.[step] as Record<string | number, unknown> | undefined;
  const last = where[where.length - 1];
  if (node && typeof node === "object" && last !== undefined) node[last] = value;
}

function writeFully(fd: number, buffer: Buffer): void {
  let offset = 0;
  while (offset < buffer.length) offset += writeSync(fd, buffer, offset, buffer.length - offset);
}

/** Makes a rename durable. Some platforms cannot open or fsync a directory; the rename itself is still atomic there. */
function syncDirectory(directory: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(directory, "r");
    fsyncSync(fd);
  } catch {
    // Best effort (see above).
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Temporary files of compactions a crash interrupted (the rename never happened, so they hold nothing needed). */
function removeLeftoverTemporaries(file: string): void {
  const prefix = `${path.basename(file)}.`;
  for (const name of readdirSync(path.dirname(file))) {
    if (name.startsWith(prefix) && name.endsWith(".tmp") && !name.startsWith(`${prefix}lock`)) unlinkSync(path.join(path.dirname(file), name));
  }
}

function lockPath(file: string): string {
  return `${file}.lock`;
}

/**
 * Creates `<file>.lock` holding our pid, atomically (hard link of a written temporary file). A
 * lock whose process is gone (a crash, SIGKILL) is taken over.
 */
function acquireLock(file: string): void {
  const lock = lockPath(file);
  const temporary = `${lock}.${process.pid}.tmp`;
  for (let attempt = 0; attempt < 2; attempt++) {
    const fd = openSync(temporary, "w");
    try {
      writeFully(fd, Buffer.from(String(process.pid)));
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temporary, lock);
      heldHere.add(file);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    } finally {
      unlinkSync(temporary);
    }
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(lock, "utf8").trim());
    } catch {
      continue; // released meanwhile: try again
    }
    const ours = holder === process.pid;
    if (Number.isInteger(holder) && holder > 0 && ((ours && heldHere.has(file)) || (!ours && processIsAlive(holder)))) {
      throw new StateFileError(`${file} is in use by another Stripe emulator (pid ${holder}); stop it, or delete ${lock} if no emulator is running.`);
    }
    unlinkSync(lock); // stale: its process is gone
  }
  throw new StateFileError(`Could not lock ${file}; delete ${lock} if no emulator is running.`);
}

function releaseLock(file: string): void {
  heldHere.delete(file);
  try {
    unlinkSync(lockPath(file));
  } catch {
    // Already gone.
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
