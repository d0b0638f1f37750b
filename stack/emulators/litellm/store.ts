// In-memory stand-in for LiteLLM's LiteLLM_VerificationToken table and its spend counters.
//
// Spend has two values, because the real proxy has two:
// - `spend`: what enforcement sees (in-memory counters), raised as soon as a call is costed;
// - `db_spend`: the database column that /key/info, /v2/key/info and /key/list read. The proxy writes it
//   in batches every PROXY_BATCH_WRITE_AT seconds; `flush()` copies spend into db_spend for the keys
//   touched since the last flush (batch_write_ms = 0 writes at once).
import { createHash } from "node:crypto";

export interface KeyRow {
  token: string; // sha256 hex of the raw key: the primary key
  raw: string; // the proxy stores only the hash; the emulator keeps the raw key for /admin/keys
  key_alias: string | null;
  max_budget: number | null;
  spend: number; // enforcement view
  db_spend: number; // database view (what the read routes return)
  rpm_limit: number | null;
  tpm_limit: number | null;
  metadata: Record<string, unknown>;
  user_id: string | null;
  blocked: boolean | null;
  created_at: number; // epoch ms
}

export type NewKey = Partial<Omit<KeyRow, "token" | "raw" | "db_spend" | "created_at">> & { key: string };

export const hashToken = (raw: string) => createHash("sha256").update(raw).digest("hex");

/** LiteLLM's _hash_token_if_needed: values starting with "sk-" are raw keys, others already hashes. */
export const toToken = (keyOrHash: string) => keyOrHash.startsWith("sk-") ? hashToken(keyOrHash) : keyOrHash;

export function newRow(k: NewKey): KeyRow {
  const spend = k.spend ?? 0;
  return {
    token: hashToken(k.key),
    raw: k.key,
    key_alias: k.key_alias ?? null,
    max_budget: k.max_budget ?? null,
    spend,
    db_spend: spend,
    rpm_limit: k.rpm_limit ?? null,
    tpm_limit: k.tpm_limit ?? null,
    metadata: k.metadata ?? {},
    user_id: k.user_id ?? null,
    blocked: k.blocked ?? null,
    created_at: Date.now(),
  };
}

export class KeyStore {
  private byToken = new Map<string, KeyRow>(); // insertion order = creation order
  private byAlias = new Map<string, KeyRow>();
  private dirty = new Set<KeyRow>(); // rows whose spend changed since the last flush

  get size(): number {
    return this.byToken.size;
  }

  /** By raw key ("sk-...") or token hash. */
  get(keyOrHash: string): KeyRow | undefined {
    return this.byToken.get(toToken(keyOrHash));
  }

  aliasTaken(alias: string | null): boolean {
    return alias !== null && this.byAlias.has(alias);
  }

  /** Adds the row unless its token or alias exists; returns whether it was added. */
  insert(row: KeyRow): boolean {
    if (this.byToken.has(row.token) || this.aliasTaken(row.key_alias)) return false;
    this.byToken.set(row.token, row);
    if (row.key_alias !== null) this.byAlias.set(row.key_alias, row);
    return true;
  }

  remove(row: KeyRow): void {
    this.byToken.delete(row.token);
    if (row.key_alias !== null) this.byAlias.delete(row.key_alias);
    this.dirty.delete(row);
  }

  /** Every row, oldest first. */
  all(): KeyRow[] {
    return [...this.byToken.values()];
  }

  clear(): void {
    this.byToken.clear();
    this.byAlias.clear();
    this.dirty.clear();
  }

  /** Sets the enforcement counter; the database view follows at the next flush (or at once). */
  setSpend(row: KeyRow, value: number, immediate: boolean): void {
    row.spend = value;
    if (immediate) row.db_spend = value;
    else this.dirty.add(row);
  }

  /** A restored LiteLLM database: both views hold the older value and nothing queued survives. */
  restoreSpend(row: KeyRow, value: number): void {
    row.spend = row.db_spend = value;
    this.dirty.delete(row);
  }

  /** The batch writer: copies enforcement spend into the database view. Returns rows written. */
  flush(): number {
    const n = this.dirty.size;
    for (const row of this.dirty) row.db_spend = row.spend;
    this.dirty.clear();
    return n;
  }
}

/** A row as the read routes serialise it (spend = the database column). */
export function rowJson(row: KeyRow, withToken = true): Record<string, unknown> {
  return {
    ...(withToken ? { token: row.token } : {}),
    key_name: `sk-...${row.raw.slice(-4)}`,
    key_alias: row.key_alias,
    spend: row.db_spend,
    max_budget: row.max_budget,
    budget_duration: null,
    rpm_limit: row.rpm_limit,
    tpm_limit: row.tpm_limit,
    metadata: row.metadata,
    user_id: row.user_id,
    blocked: row.blocked,
    expires: null,
    created_at: new Date(row.created_at).toISOString(),
  };
}
