// In-memory stand-in for LiteLLM's LiteLLM_VerificationToken table plus its spend counters.
//
// Sized for 100,000+ keys: every lookup is a Map hit (by token = sha256 hex of the raw key,
// by alias, by user_id), and /key/list pages straight out of an array kept sorted by
// (created_at, token), which is the proxy's default order (read backwards: newest first).
//
// Spend has two values, because real LiteLLM has two:
// - `spend`: what enforcement sees (in-memory/Redis counters), updated at once after a call;
// - `db_spend`: the database column that /key/info, /v2/key/info and /key/list read. The proxy
//   writes it in batches every PROXY_BATCH_WRITE_AT seconds; here `flush()` copies spend into
//   db_spend for the keys touched since the last flush (batch_write_ms = 0 means at once).

import { createHash, randomBytes } from "node:crypto";
import { Buffer } from "node:buffer";

export interface KeyRow {
  token: string; // sha256 hex of the raw key: the primary key
  raw: string; // the raw key (the real proxy does not keep it; the emulator does for /admin/keys)
  key_name: string; // "sk-...XXXX"
  key_alias: string | null;
  max_budget: number | null;
  spend: number; // enforcement view
  db_spend: number; // database view (what read routes return)
  budget_duration: string | null;
  budget_reset_at: number | null; // epoch ms
  soft_budget: number | null;
  budget_id: string | null;
  rpm_limit: number | null;
  tpm_limit: number | null;
  max_parallel_requests: number | null;
  models: string[];
  metadata: Record<string, unknown>;
  user_id: string | null;
  blocked: boolean | null;
  expires: number | null; // epoch ms
  created_at: number; // epoch ms
  updated_at: number; // epoch ms
  created_by: string | null;
  updated_by: string | null;
}

export function hashToken(raw: string): string {
  return createHash("sha256").update(raw).digest("hex");
}

/** LiteLLM's _hash_token_if_needed: values starting with "sk-" are raw keys, others hashes. */
export function toToken(keyOrHash: string): string {
  return keyOrHash.startsWith("sk-") ? hashToken(keyOrHash) : keyOrHash;
}

/** secrets.token_urlsafe(16): 16 random bytes, base64url, 22 characters. */
export function generateRawKey(bytes: Uint8Array = randomBytes(16)): string {
  return "sk-" + Buffer.from(bytes).toString("base64url");
}

export function keyName(raw: string): string {
  return `sk-...${raw.slice(-4)}`;
}

const iso = (
  ms: number | null,
) => (ms === null ? null : new Date(ms).toISOString());

function cmpRow(a: KeyRow, b: KeyRow): number {
  if (a.created_at !== b.created_at) return a.created_at - b.created_at;
  return a.token < b.token ? -1 : a.token > b.token ? 1 : 0;
}

/** Mulberry32: a tiny seeded PRNG so /admin/seed with rng_seed is reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SeedOptions {
  count: number;
  max_budget?: number | null;
  spend_max?: number;
  prefix?: string;
  rng_seed?: number | null;
}

export class KeyStore {
  private byToken = new Map<string, KeyRow>();
  private byAlias = new Map<string, KeyRow>();
  private byUser = new Map<string, Set<KeyRow>>();
  /** All rows sorted ascending by (created_at, token). */
  private ordered: KeyRow[] = [];
  /** Rows whose spend changed since the last flush. */
  private dirty = new Set<KeyRow>();
  /** Rows with a budget_duration (the reset job only looks at these). */
  private resettable = new Set<KeyRow>();
  private lastCreatedAt = 0;
  private seedCounter = 0;

  get size(): number {
    return this.byToken.size;
  }

  /** Look up by raw key ("sk-...") or token hash. */
  get(keyOrHash: string): KeyRow | undefined {
    return this.byToken.get(toToken(keyOrHash));
  }

  getByAlias(alias: string): KeyRow | undefined {
    return this.byAlias.get(alias);
  }

  aliasTaken(alias: string, exceptToken?: string): boolean {
    const row = this.byAlias.get(alias);
    return row !== undefined && row.token !== exceptToken;
  }

  /** A strictly increasing creation time (microsecond steps, like Postgres timestamps), so appending
   * keeps `ordered` sorted and keys made in the same millisecond still list newest first. */
  nextCreatedAt(): number {
    this.lastCreatedAt = Math.max(Date.now(), this.lastCreatedAt + 0.001);
    return this.lastCreatedAt;
  }

  insert(row: KeyRow): void {
    if (this.byToken.has(row.token)) {
      throw new Error(`duplicate token ${row.token}`);
    }
    this.byToken.set(row.token, row);
    if (row.key_alias !== null) this.byAlias.set(row.key_alias, row);
    this.indexUser(row);
    if (row.budget_duration) this.resettable.add(row);
    const last = this.ordered[this.ordered.length - 1];
    if (!last || cmpRow(last, row) < 0) this.ordered.push(row);
    else this.ordered.splice(this.lowerBound(row), 0, row);
  }

  remove(row: KeyRow): void {
    if (this.byToken.get(row.token) !== row) return;
    this.byToken.delete(row.token);
    if (row.key_alias !== null && this.byAlias.get(row.key_alias) === row) {
      this.byAlias.delete(row.key_alias);
    }
    this.unindexUser(row);
    this.dirty.delete(row);
    this.resettable.delete(row);
    const i = this.lowerBound(row);
    if (this.ordered[i] === row) this.ordered.splice(i, 1);
  }

  /** Keep the alias / user indexes right when those fields change. */
  setAlias(row: KeyRow, alias: string | null): void {
    if (row.key_alias !== null && this.byAlias.get(row.key_alias) === row) {
      this.byAlias.delete(row.key_alias);
    }
    row.key_alias = alias;
    if (alias !== null) this.byAlias.set(alias, row);
  }

  setUser(row: KeyRow, userId: string | null): void {
    this.unindexUser(row);
    row.user_id = userId;
    this.indexUser(row);
  }

  setBudgetDuration(
    row: KeyRow,
    duration: string | null,
    resetAt: number | null,
  ): void {
    row.budget_duration = duration;
    row.budget_reset_at = resetAt;
    if (duration) this.resettable.add(row);
    else this.resettable.delete(row);
  }

  // ---- spend ------------------------------------------------------------------------------

  /** Add the cost of a call to the enforcement counter; the database sees it at the next flush. */
  addSpend(row: KeyRow, amount: number, immediate: boolean): void {
    row.spend += amount;
    this.touchSpend(row, immediate);
  }

  /** Set the enforcement counter (admin tool); the database follows at the next flush. */
  setSpend(row: KeyRow, value: number, immediate: boolean): void {
    row.spend = value;
    this.touchSpend(row, immediate);
  }

  /**
   * A restored (or reset) LiteLLM database: the spend column holds an older, lower value, and the proxy,
   * restarted on it, counts from there (nothing queued for the batch writer survives the restart).
   */
  restoreSpend(row: KeyRow, value: number): void {
    row.spend = value;
    row.db_spend = value;
    this.dirty.delete(row);
  }

  /**
   * /key/update {spend}: overwrite the database column. Increments still queued for the
   * batch writer are not lost (they land on top at the next flush), as in the real proxy.
   */
  overwriteDbSpend(row: KeyRow, value: number): void {
    const pending = row.spend - row.db_spend;
    row.db_spend = value;
    row.spend = pending === 0 ? value : value + pending;
    if (pending === 0) this.dirty.delete(row);
  }

  private touchSpend(row: KeyRow, immediate: boolean): void {
    if (immediate) {
      row.db_spend = row.spend;
      this.dirty.delete(row);
    } else this.dirty.add(row);
  }

  /** The batch writer: copy enforcement spend into the database view. Returns rows written. */
  flush(): number {
    const n = this.dirty.size;
    for (const row of this.dirty) row.db_spend = row.spend;
    this.dirty.clear();
    return n;
  }

  get pendingWrites(): number {
    return this.dirty.size;
  }

  /** The budget reset job: zero spend of keys whose budget_reset_at has passed. */
  resetBudgets(
    now = Date.now(),
    durationMs: (d: string, from: number) => number,
  ): number {
    let n = 0;
    for (const row of this.resettable) {
      if (
        row.budget_duration && row.budget_reset_at !== null &&
        row.budget_reset_at <= now
      ) {
        row.spend = 0;
        row.db_spend = 0;
        this.dirty.delete(row);
        row.budget_reset_at = now + durationMs(row.budget_duration, now);
        row.updated_at = now;
        n++;
      }
    }
    return n;
  }

  // ---- reads ------------------------------------------------------------------------------

  /** Default /key/list order: created_at desc, token desc. O(size) per page. */
  pageNewestFirst(page: number, size: number): KeyRow[] {
    const out: KeyRow[] = [];
    const n = this.ordered.length;
    const start = (page - 1) * size;
    for (let i = start; i < start + size && i < n; i++) {
      out.push(this.ordered[n - 1 - i]);
    }
    return out;
  }

  /** Rows matching exact filters, using the indexes (no scan of the whole table). */
  filtered(
    f: { key_alias?: string; user_id?: string; token?: string },
  ): KeyRow[] {
    let rows: KeyRow[] | null = null;
    const narrow = (cands: Iterable<KeyRow>) => {
      const set = new Set(cands);
      rows = rows === null ? [...set] : rows.filter((r) => set.has(r));
    };
    if (f.token !== undefined) {
      narrow(this.byToken.has(f.token) ? [this.byToken.get(f.token)!] : []);
    }
    if (f.key_alias !== undefined) {
      narrow(
        this.byAlias.has(f.key_alias) ? [this.byAlias.get(f.key_alias)!] : [],
      );
    }
    if (f.user_id !== undefined) narrow(this.byUser.get(f.user_id) ?? []);
    const result: KeyRow[] = rows ?? [...this.ordered];
    return result.sort((a, b) => cmpRow(b, a));
  }

  /** Every row, for explicit sort_by requests (a full sort, as a database would do). */
  all(): KeyRow[] {
    return this.ordered.slice();
  }

  /** Insertion-ordered slice of raw keys for benchmark scripts. */
  slice(offset: number, limit: number): KeyRow[] {
    return this.ordered.slice(offset, offset + limit);
  }

  // ---- bulk -------------------------------------------------------------------------------

  /** Bulk-create keys fast (no per-key allocation beyond the row itself). */
  seed(opts: SeedOptions): { created: KeyRow[]; skipped: number } {
    const count = Math.floor(opts.count);
    const rng = opts.rng_seed === undefined || opts.rng_seed === null
      ? null
      : mulberry32(opts.rng_seed);
    const rand = rng ?? Math.random;
    const prefix = opts.prefix ?? "seed";
    const maxBudget = opts.max_budget === undefined ? null : opts.max_budget;
    const spendMax = opts.spend_max ?? (maxBudget ?? 1);
    const entropy = rng ? null : randomBytes(16 * count);
    const now = this.nextCreatedAt();
    const created: KeyRow[] = [];
    let skipped = 0;
    const bytes = new Uint8Array(16);
    for (let i = 0; i < count; i++) {
      let raw: string;
      if (entropy) raw = generateRawKey(entropy.subarray(i * 16, i * 16 + 16));
      else {
        for (let j = 0; j < 16; j++) bytes[j] = Math.floor(rng!() * 256);
        raw = generateRawKey(bytes);
      }
      const token = hashToken(raw);
      let alias = `${prefix}-${++this.seedCounter}`;
      while (this.byAlias.has(alias)) alias = `${prefix}-${++this.seedCounter}`;
      if (this.byToken.has(token)) {
        skipped++;
        continue;
      }
      // Rounded to micro-dollars so seeded values print cleanly; exact values do not matter.
      const spend = Math.round(rand() * spendMax * 1e6) / 1e6;
      const row: KeyRow = {
        token,
        raw,
        key_name: keyName(raw),
        key_alias: alias,
        max_budget: maxBudget,
        spend,
        db_spend: spend,
        budget_duration: null,
        budget_reset_at: null,
        soft_budget: null,
        budget_id: null,
        rpm_limit: null,
        tpm_limit: null,
        max_parallel_requests: null,
        models: [],
        metadata: {},
        user_id: null,
        blocked: null,
        expires: null,
        created_at: now,
        updated_at: now,
        created_by: null,
        updated_by: null,
      };
      this.byToken.set(token, row);
      this.byAlias.set(alias, row);
      created.push(row);
    }
    // One sort of the batch instead of one ordered insert per row.
    created.sort(cmpRow);
    const last = this.ordered[this.ordered.length - 1];
    if (!last || !created.length || cmpRow(last, created[0]) < 0) {
      for (const r of created) this.ordered.push(r);
    } else {
      for (const r of created) this.ordered.push(r);
      this.ordered.sort(cmpRow);
    }
    return { created, skipped };
  }

  /**
   * Bulk-insert fully built rows (POST /admin/import): one sort of the batch instead of one
   * ordered insert per row. Rows whose token or alias already exists are skipped.
   */
  bulkInsert(rows: KeyRow[]): { created: number; skipped: number } {
    const created: KeyRow[] = [];
    let skipped = 0;
    for (const row of rows) {
      if (
        this.byToken.has(row.token) ||
        (row.key_alias !== null && this.byAlias.has(row.key_alias))
      ) {
        skipped++;
        continue;
      }
      this.byToken.set(row.token, row);
      if (row.key_alias !== null) this.byAlias.set(row.key_alias, row);
      this.indexUser(row);
      if (row.budget_duration) this.resettable.add(row);
      created.push(row);
    }
    created.sort(cmpRow);
    const last = this.ordered[this.ordered.length - 1];
    for (const r of created) this.ordered.push(r);
    if (last && created.length && cmpRow(last, created[0]) > 0) {
      this.ordered.sort(cmpRow);
    }
    return { created: created.length, skipped };
  }

  clear(): void {
    this.byToken.clear();
    this.byAlias.clear();
    this.byUser.clear();
    this.ordered = [];
    this.dirty.clear();
    this.resettable.clear();
    this.seedCounter = 0;
  }

  // ---- internals --------------------------------------------------------------------------

  private lowerBound(row: KeyRow): number {
    let lo = 0;
    let hi = this.ordered.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmpRow(this.ordered[mid], row) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private indexUser(row: KeyRow): void {
    if (row.user_id === null) return;
    let set = this.byUser.get(row.user_id);
    if (!set) this.byUser.set(row.user_id, set = new Set());
    set.add(row);
  }

  private unindexUser(row: KeyRow): void {
    if (row.user_id === null) return;
    const set = this.byUser.get(row.user_id);
    if (!set) return;
    set.delete(row);
    if (!set.size) this.byUser.delete(row.user_id);
  }
}

/**
 * The database row as LiteLLM serialises LiteLLM_VerificationToken (spend = the db column).
 * /key/info drops `token`; /v2/key/info, /key/list and /key/update keep it.
 */
export function rowJson(
  row: KeyRow,
  includeToken = true,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (includeToken) out.token = row.token;
  Object.assign(out, {
    key_name: row.key_name,
    key_alias: row.key_alias,
    soft_budget_cooldown: false,
    spend: row.db_spend,
    expires: iso(row.expires),
    models: row.models,
    aliases: {},
    config: {},
    user_id: row.user_id,
    team_id: null,
    permissions: {},
    max_parallel_requests: row.max_parallel_requests,
    metadata: row.metadata,
    blocked: row.blocked,
    tpm_limit: row.tpm_limit,
    rpm_limit: row.rpm_limit,
    max_budget: row.max_budget,
    budget_duration: row.budget_duration,
    budget_reset_at: iso(row.budget_reset_at),
    allowed_cache_controls: [],
    allowed_routes: [],
    model_spend: {},
    model_max_budget: {},
    budget_id: row.budget_id,
    organization_id: null,
    object_permission_id: null,
    created_at: iso(row.created_at),
    created_by: row.created_by,
    updated_at: iso(row.updated_at),
    updated_by: row.updated_by,
    litellm_budget_table: row.budget_id === null ? null : {
      budget_id: row.budget_id,
      soft_budget: row.soft_budget,
      max_budget: null,
      max_parallel_requests: null,
      tpm_limit: null,
      rpm_limit: null,
      model_max_budget: {},
      budget_duration: null,
    },
  });
  return out;
}
