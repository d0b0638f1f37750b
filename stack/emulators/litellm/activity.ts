// LiteLLM's daily usage table (LiteLLM_DailyUserSpend) and GET /user/daily/activity, as far as usage-pull
// reads them. The proxy keeps one row per (user, UTC day of the request's start, key, model, provider,
// endpoint), adds each costed request to it when its batch writer runs (PROXY_BATCH_WRITE_AT), and the
// route pages over those rows ordered by date desc, id asc, folding each page per day into breakdowns
// (model_groups[group].api_key_breakdown[token].metrics, ...). Sources: litellm/proxy/db/
// db_spend_update_writer.py, litellm/proxy/management_endpoints/internal_user_endpoints.py and
// common_daily_activity.py, litellm/types/proxy/management_endpoints/common_daily_activity.py.
import { z } from "zod";
import { type Handler, json, parse, proxyError } from "./http.ts";
import type { EmulatorState } from "./state.ts";

export interface DailyRow {
  id: string;
  user_id: string;
  date: string; // YYYY-MM-DD (UTC)
  api_key: string; // the key's sha256 token
  model: string;
  model_group: string;
  custom_llm_provider: string;
  endpoint: string;
  prompt_tokens: number;
  completion_tokens: number;
  spend: number;
  api_requests: number;
  successful_requests: number;
  failed_requests: number;
}

export type DailyUse = Omit<DailyRow, "id" | "api_requests" | "successful_requests" | "failed_requests">;

export class DailySpend {
  private rows = new Map<string, DailyRow>();
  private pending: DailyUse[] = [];

  /** One costed request; written now or at the next batch write. LiteLLM skips requests of keys without a user. */
  add(use: DailyUse, immediate: boolean): void {
    if (!use.user_id) return;
    if (immediate) this.write(use);
    else this.pending.push(use);
  }

  flush(): void {
    for (const use of this.pending.splice(0)) this.write(use);
  }

  clear(): void {
    this.rows.clear();
    this.pending = [];
  }

  private write(u: DailyUse): void {
    const k = [u.user_id, u.date, u.api_key, u.model, u.custom_llm_provider, u.endpoint].join("\u0000");
    const row = this.rows.get(k) ?? {
      ...u,
      id: crypto.randomUUID(),
      prompt_tokens: 0,
      completion_tokens: 0,
      spend: 0,
      api_requests: 0,
      successful_requests: 0,
      failed_requests: 0,
    };
    row.prompt_tokens += u.prompt_tokens;
    row.completion_tokens += u.completion_tokens;
    row.spend += u.spend;
    row.api_requests++;
    row.successful_requests++;
    this.rows.set(k, row);
  }

  /** Rows of the date range, ordered as the route pages them (date desc, id asc). */
  between(start: string, end: string): DailyRow[] {
    return [...this.rows.values()].filter((r) => r.date >= start && r.date <= end)
      .sort((a, b) => (a.date === b.date ? (a.id < b.id ? -1 : 1) : a.date < b.date ? 1 : -1));
  }
}

const METRICS = [
  "spend",
  "prompt_tokens",
  "completion_tokens",
  "api_requests",
  "successful_requests",
  "failed_requests",
];
type Metrics = Record<string, number>;
const emptyMetrics = (): Metrics => ({ ...Object.fromEntries(METRICS.map((m) => [m, 0])), total_tokens: 0 });

function addTo(m: Metrics, r: DailyRow): Metrics {
  for (const k of METRICS) m[k] += r[k as keyof DailyRow] as number;
  m.total_tokens += r.prompt_tokens + r.completion_tokens;
  return m;
}

/** breakdown[dimension][value] with its api_key_breakdown, as update_breakdown_metrics builds it. */
function breakdownOf(rows: DailyRow[]) {
  const dims = {
    models: "model",
    model_groups: "model_group",
    providers: "custom_llm_provider",
    endpoints: "endpoint",
  };
  const breakdown: Record<string, Record<string, { metrics: Metrics; metadata: object; api_key_breakdown?: object }>> =
    { models: {}, model_groups: {}, providers: {}, endpoints: {}, api_keys: {}, mcp_servers: {}, entities: {} };
  for (const r of rows) {
    for (const [dim, field] of Object.entries(dims)) {
      const value = r[field as keyof DailyRow] as string;
      const b = breakdown[dim][value] ??= { metrics: emptyMetrics(), metadata: {}, api_key_breakdown: {} };
      addTo(b.metrics, r);
      const keys = b.api_key_breakdown as Record<string, { metrics: Metrics; metadata: object }>;
      addTo((keys[r.api_key] ??= { metrics: emptyMetrics(), metadata: { key_alias: null, team_id: null } }).metrics, r);
    }
    const k = breakdown.api_keys[r.api_key] ??= {
      metrics: emptyMetrics(),
      metadata: { key_alias: null, team_id: null },
    };
    addTo(k.metrics, r);
  }
  return breakdown;
}

const activityQuery = z.object({
  start_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
  end_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
  page: z.coerce.number().int().min(1).default(1),
  page_size: z.coerce.number().int().min(1).max(1000).default(50),
});

export function activityRoutes(state: EmulatorState): Record<string, Handler> {
  return {
    // The master key sees every user (admin view); the product never calls it with a virtual key.
    "GET /user/daily/activity": (req, url) => {
      const q = parse(activityQuery, Object.fromEntries(url.searchParams), "query");
      state.requireMaster(req);
      if (!q.start_date || !q.end_date) {
        throw proxyError(400, "{'error': 'Please provide start_date and end_date'}", "bad_request_error");
      }
      const all = state.daily.between(q.start_date, q.end_date);
      const page = all.slice((q.page - 1) * q.page_size, q.page * q.page_size);
      const byDate = Map.groupBy(page, (r) => r.date);
      const results = [...byDate.entries()].map(([date, rows]) => ({
        date,
        metrics: rows.reduce(addTo, emptyMetrics()),
        breakdown: breakdownOf(rows),
      }));
      const totals = page.reduce(addTo, emptyMetrics());
      return Promise.resolve(json(200, {
        results,
        metadata: {
          total_spend: totals.spend,
          total_prompt_tokens: totals.prompt_tokens,
          total_completion_tokens: totals.completion_tokens,
          total_tokens: totals.total_tokens,
          total_api_requests: totals.api_requests,
          total_successful_requests: totals.successful_requests,
          total_failed_requests: totals.failed_requests,
          page: q.page,
          total_pages: Math.ceil(all.length / q.page_size),
          has_more: q.page * q.page_size < all.length,
        },
      }));
    },
  };
}
