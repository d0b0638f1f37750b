// The audit mode of reconcile-spend (`npm run admin -- audit`): reads LiteLLM for a range of chunks (one
// batch key-info request per 1000 keys) and lets SQL compare it with the ledger (private.audit_chunk).
// Changes nothing. Bounded: at most maxChunks chunks per invocation; the caller asks for the next range.
import { db } from "./db.ts";
import { type CallStats, litellm } from "./litellm.ts";

export interface AuditChunk {
  chunk: number;
  keys: number;
  litellm_spend: string;
  mismatches: { key_id: string; user_id: string; kind: string; ledger: string | null; litellm: string | null }[];
}

export async function auditChunks(fromChunk: number, maxChunks: number, stats: CallStats) {
  const sql = db();
  const [{ last }] = await sql<{ last: number }[]>`select private.audit_last_chunk() as last`;
  const chunks: AuditChunk[] = [];
  let chunk = fromChunk;
  for (; chunk <= last && chunks.length < maxChunks; chunk++) {
    const [{ keys }] = await sql<
      { keys: { id: string; token: string }[] }[]
    >`select private.audit_chunk_keys(${chunk}) as keys`;
    const seen = keys.length ? await litellm().keysInfo(keys.map((k) => k.token), stats) : new Map();
    const rows = [...seen.values()].map((r) => ({
      token: r.token,
      spend: r.spend,
      max_budget: r.max_budget ?? null,
      blocked: r.blocked,
    }));
    const [{ result }] = await sql<{ result: AuditChunk }[]>`select private.audit_chunk(${chunk}, ${
      sql.json(rows as never)
    }) as result`;
    chunks.push(result);
  }
  return { chunks, next_chunk: chunk <= last ? chunk : null };
}
