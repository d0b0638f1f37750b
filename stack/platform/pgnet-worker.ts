// pg_net's background worker, for the stand-in extension (stack/platform/extensions/pg_net--0.20.0.sql):
// claims committed rows of net.http_request_queue, sends them, and writes net._http_response under the
// same id. Woken by NOTIFY pg_net_stand_in (delivered only at commit, so rolled-back calls are never seen)
// with a 250 ms poll as a fallback.
import { adminSql } from "./db.ts";
import { log } from "./http.ts";

const MAX_IN_FLIGHT = 16;
const CLAIM_LIMIT = 50;
const POLL_MS = 250;
const CLEANUP_MS = 5 * 60_000;

interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  headers: Record<string, unknown> | null;
  body: Uint8Array | null;
  timeout_milliseconds: number;
}

export function startPgNetWorker() {
  const sql = adminSql(4, "stack-pg-net-worker");
  let inFlight = 0;
  let draining = false;
  let again = false;
  let stopped = false;
  let lastError = "";
  const sends = new Set<Promise<void>>();

  type Outcome = {
    status?: number;
    type?: string | null;
    headers?: Record<string, string>;
    content?: string;
    timedOut?: boolean;
    error?: string;
  };

  async function perform(q: QueuedRequest): Promise<Outcome> {
    const headers = new Headers();
    for (const [k, v] of Object.entries(q.headers ?? {})) headers.set(k, typeof v === "string" ? v : JSON.stringify(v));
    try {
      const res = await fetch(q.url, {
        method: q.method,
        headers,
        body: q.body ? new Uint8Array(q.body) : undefined,
        signal: AbortSignal.timeout(q.timeout_milliseconds), // also bounds reading the body, like curl's timeout
      });
      const content = await res.text();
      return {
        status: res.status,
        type: res.headers.get("content-type"),
        headers: Object.fromEntries(res.headers),
        content,
      };
    } catch (e) {
      const err = e as Error;
      if (err.name === "TimeoutError") {
        return { timedOut: true, error: `Timeout of ${q.timeout_milliseconds} ms reached` };
      }
      return { error: err.message };
    }
  }

  async function send(q: QueuedRequest) {
    const r = await perform(q);
    try {
      await sql`
        insert into net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
        values (${q.id}, ${r.status ?? null}, ${r.type ?? null}, ${r.headers ? sql.json(r.headers) : null}, ${
        r.content ?? null
      },
                ${r.timedOut ?? false}, ${r.error ?? null})`;
    } catch (e) {
      log(`pg_net: could not store the response of request ${q.id}: ${(e as Error).message}`);
    }
  }

  async function drain() {
    if (stopped) return;
    if (draining) {
      again = true;
      return;
    }
    draining = true;
    try {
      do {
        again = false;
        const free = Math.min(CLAIM_LIMIT, MAX_IN_FLIGHT - inFlight);
        if (free <= 0) break; // a finishing send calls drain() again
        // A materialized CTE, not `where id in (select ... limit n for update skip locked)`: the planner may
        // rescan that subquery per row (nested-loop semi join) and claim far more than n rows.
        const rows = await sql<QueuedRequest[]>`
          with claimed as materialized (
            select id from net.http_request_queue order by id limit ${free} for update skip locked
          )
          delete from net.http_request_queue q using claimed where q.id = claimed.id
          returning q.*`;
        for (const q of [...rows].sort((a, b) => Number(a.id) - Number(b.id))) {
          inFlight++;
          const p = send(q).finally(() => {
            inFlight--;
            sends.delete(p);
            drain();
          });
          sends.add(p);
        }
        if (rows.length === free) again = true;
      } while (again && !stopped);
      lastError = "";
    } catch (e) {
      // Log a failing claim once, not every 250 ms (e.g. before the pg_net extension is created).
      const msg = (e as Error).message;
      if (msg !== lastError && !stopped) log(`pg_net: claiming requests failed: ${msg}`);
      lastError = msg;
    } finally {
      draining = false;
    }
  }

  async function cleanup() {
    try {
      await sql`delete from net._http_response where created < now() - interval '6 hours'`;
    } catch { /* the extension may not exist yet */ }
  }

  sql.listen("pg_net_stand_in", () => drain(), () => drain()).catch((e) =>
    log(`pg_net: LISTEN failed, polling only: ${(e as Error).message}`)
  );
  const poll = setInterval(drain, POLL_MS);
  const clean = setInterval(cleanup, CLEANUP_MS);
  cleanup();

  return {
    async stop() {
      stopped = true;
      clearInterval(poll);
      clearInterval(clean);
      await Promise.race([Promise.allSettled([...sends]), new Promise((r) => setTimeout(r, 2000))]);
      await sql.end({ timeout: 2 });
    },
  };
}
