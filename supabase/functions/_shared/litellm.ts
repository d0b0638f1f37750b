// The one LiteLLM client. Every call to the LiteLLM proxy's management API lives here.
//
// Money rules enforced by construction (product rules, invariants 4 and 5):
// - a budget update sends max_budget as an absolute value, and nothing else;
// - there is no way to send `spend` or `budget_duration` (the request types do not have them);
// - metadata is sent only when a key is created;
// - money is a decimal string both ways: max_budget goes out as a JSON number with exactly the ledger's
//   digits, and spend / max_budget / costs come back as the exact decimal of the double LiteLLM sent
//   (_shared/money.ts), so nothing here compares or adds money as floats.
// Resilience: a timeout per HTTP attempt; up to maxRetries more attempts, after a backoff that doubles each
// time with jitter (a random wait between half and all of it), only for network errors, timeouts, 5xx and
// 429 (never budget_exceeded, another 4xx or an answer that does not parse), and none once the breaker is
// open; a circuit breaker, opened by breakerThreshold failures in a row (network, timeout, 5xx; any answer
// below 500 resets the count), so a LiteLLM that is down fails fast instead of eating the function's time.
import { z } from "zod";
import { config } from "./config.ts";
import { log, maskKey } from "./log.ts";
import { DECIMAL_TEXT, decimalOfNumber, jsonWithMoney } from "./money.ts";

export interface LiteLLMOptions {
  baseUrl: string;
  masterKey: string;
  timeoutMs: number;
  maxRetries: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
  retryBaseMs?: number;
  fetch?: typeof fetch;
}

export class LiteLLMError extends Error {
  constructor(
    message: string,
    public readonly status: number | null, // null: no HTTP answer (network, timeout, circuit open)
    public readonly type: string, // LiteLLM's error.type, or network_error / timeout / circuit_open
    public readonly retryable: boolean,
    public readonly attempts: number,
  ) {
    super(message);
    this.name = "LiteLLMError";
  }
}

/** Counts HTTP attempts across calls, for callers that record tries (provisioning). */
export interface CallStats {
  attempts: number;
  requests?: number;
}

// --- response shapes (validated: a proxy that answers something else is an error, not undefined) ---
/** A money amount as LiteLLM sends it (a JSON number, sometimes a string), as an exact decimal string. */
const money = z.union([z.number().transform(decimalOfNumber), z.string().trim().regex(DECIMAL_TEXT)]);
const keyRow = z.object({
  token: z.string().nullish(),
  key_name: z.string().nullish(),
  key_alias: z.string().nullish(),
  spend: money.nullish().transform((v) => v ?? "0"),
  max_budget: money.nullish(),
  blocked: z.boolean().nullish().transform((v) => v ?? false),
  budget_duration: z.string().nullish(),
  rpm_limit: z.number().nullish(),
  tpm_limit: z.number().nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  user_id: z.string().nullish(),
}).passthrough();
export type KeyInfo = z.infer<typeof keyRow>;

const generateResponse = z.object({
  key: z.string(),
  token: z.string().nullish(),
  key_alias: z.string().nullish(),
  max_budget: money.nullish(),
}).passthrough();
const infoResponse = z.object({ key: z.string().nullish(), info: keyRow });
// The batch read only needs what reconcile uses; a narrow schema that drops unknown fields parses 1,000 rows
// in about 0.6 ms against 10.7 ms for the full row with passthrough (docs/benchmarks.md), which matters
// inside the 2 s CPU limit.
const spendRow = z.object({
  token: z.string().nullish(),
  spend: money.nullish().transform((v) => v ?? "0"),
  max_budget: money.nullish(),
  blocked: z.boolean().nullish().transform((v) => v ?? false),
});
export type SpendRow = z.infer<typeof spendRow>;
const infoV2Response = z.object({ info: z.array(spendRow) });
const deleteResponse = z.object({ deleted_keys: z.array(z.unknown()) }).passthrough();
const anyObject = z.record(z.string(), z.unknown());
// GET /user/daily/activity (SpendAnalyticsPaginatedResponse): only what usage-pull reads. Each model group's
// api_key_breakdown is required: a proxy without it cannot say which key used the model, and fails loudly.
const activityMetrics = z.object({
  spend: money.nullish().transform((v) => v ?? "0"),
  prompt_tokens: z.number().nullish(),
  completion_tokens: z.number().nullish(),
  successful_requests: z.number().nullish(),
});
const activityResponse = z.object({
  results: z.array(z.object({
    date: z.string(),
    breakdown: z.object({
      model_groups: z.record(
        z.string(),
        z.object({ api_key_breakdown: z.record(z.string(), z.object({ metrics: activityMetrics })) }),
      ),
    }),
  })),
  metadata: z.object({ page: z.number().int(), total_pages: z.number().int(), has_more: z.boolean().nullish() }),
});

/** One key's use of one model group on the page's day: summed by private.record_usage_pull_page. */
export interface UsageRow {
  token: string;
  model: string;
  spend: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
}

export interface GenerateKeyRequest {
  key: string; // chosen by us beforehand, so a retry can never create a second key
  key_alias: string;
  max_budget: string; // decimal, the ledger target
  rpm_limit?: number;
  tpm_limit?: number;
  user_id?: string;
  metadata: Record<string, unknown>;
  blocked?: boolean; // created blocked (a rotation while a dispute is open)
}

/** A request body already serialised (money written with its exact digits). */
class JsonText {
  constructor(readonly text: string) {}
}

class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  constructor(private threshold: number, private cooldownMs: number) {}
  /** Whether a call may go: closed, or the cooldown is over (then the next failure opens it again at once). */
  check(): boolean {
    return Date.now() >= this.openUntil;
  }
  success() {
    this.failures = 0;
    this.openUntil = 0;
  }
  failure() {
    this.failures++;
    if (this.failures >= this.threshold) this.openUntil = Date.now() + this.cooldownMs;
  }
  get isOpen() {
    return Date.now() < this.openUntil;
  }
}

export class LiteLLMClient {
  private breaker: CircuitBreaker;
  private doFetch: typeof fetch;
  constructor(private opts: LiteLLMOptions) {
    this.breaker = new CircuitBreaker(opts.breakerThreshold, opts.breakerCooldownMs);
    this.doFetch = opts.fetch ?? fetch;
  }

  get circuitOpen(): boolean {
    return this.breaker.isOpen;
  }

  private async request<T>(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    schema: z.ZodType<T>,
    stats?: CallStats,
  ): Promise<T> {
    const url = `${this.opts.baseUrl.replace(/\/$/, "")}${path}`;
    const route = path.split("?")[0];
    let attempt = 0;
    for (;;) {
      if (!this.breaker.check()) {
        throw new LiteLLMError(
          `LiteLLM circuit open: skipping ${route} (recent calls failed)`,
          null,
          "circuit_open",
          true,
          attempt,
        );
      }
      attempt++;
      if (stats) {
        stats.attempts++;
        stats.requests = (stats.requests ?? 0) + 1;
      }
      let err: LiteLLMError;
      try {
        const res = await this.doFetch(url, {
          method,
          headers: { Authorization: `Bearer ${this.opts.masterKey}`, "Content-Type": "application/json" },
          body: body === undefined ? undefined : body instanceof JsonText ? body.text : JSON.stringify(body),
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
        const text = await res.text();
        if (res.ok) {
          this.breaker.success();
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            throw new LiteLLMError(
              `LiteLLM ${route}: answer is not JSON`,
              res.status,
              "invalid_response",
              false,
              attempt,
            );
          }
          const v = schema.safeParse(parsed);
          if (!v.success) {
            throw new LiteLLMError(
              `LiteLLM ${route}: unexpected answer (${v.error.issues[0]?.message})`,
              res.status,
              "invalid_response",
              false,
              attempt,
            );
          }
          return v.data;
        }
        err = this.httpError(route, res.status, text, attempt);
        // A 4xx means LiteLLM is up and answered: it does not count against the breaker.
        if (res.status >= 500) this.breaker.failure();
        else this.breaker.success();
      } catch (e) {
        if (e instanceof LiteLLMError) throw e;
        const timeout = e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError");
        err = new LiteLLMError(
          timeout
            ? `LiteLLM ${route}: no answer within ${this.opts.timeoutMs} ms`
            : `LiteLLM ${route}: ${(e as Error).message}`,
          null,
          timeout ? "timeout" : "network_error",
          true,
          attempt,
        );
        this.breaker.failure();
      }
      if (!err.retryable || attempt > this.opts.maxRetries || this.breaker.isOpen) throw err;
      const base = this.opts.retryBaseMs ?? 200;
      const delay = base * 2 ** (attempt - 1);
      await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * delay / 2));
      log.warn("litellm retry", { route, attempt, status: err.status, type: err.type });
    }
  }

  private httpError(route: string, status: number, text: string, attempt: number): LiteLLMError {
    let message = text.slice(0, 300);
    let type = `http_${status}`;
    try {
      const body = JSON.parse(text);
      if (body?.error) {
        message = String(body.error.message ?? message);
        type = String(body.error.type ?? type);
      } else if (body?.detail) {
        message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail).slice(0, 300);
        type = status === 422 ? "validation_error" : type;
      }
    } catch { /* not JSON */ }
    // budget_exceeded is final whatever its status (400 in older releases, 429 in newer ones).
    const retryable = type !== "budget_exceeded" && (status >= 500 || status === 429);
    return new LiteLLMError(`LiteLLM ${route} ${status}: ${message}`, status, type, retryable, attempt);
  }

  // --- key management ---

  /** Creates a key with a value and alias we chose. A 200 may mean "already existed, nothing changed":
   * callers confirm with keyInfo. */
  async generateKey(req: GenerateKeyRequest, stats?: CallStats) {
    return await this.request(
      "POST",
      "/key/generate",
      new JsonText(jsonWithMoney({
        key: req.key,
        key_alias: req.key_alias,
        rpm_limit: req.rpm_limit,
        tpm_limit: req.tpm_limit,
        user_id: req.user_id,
        metadata: req.metadata,
        ...(req.blocked ? { blocked: true } : {}),
      }, { max_budget: req.max_budget })),
      generateResponse,
      stats,
    );
  }

  /**
   * Sets the key's max_budget to an absolute value derived from the ledger (a decimal string, sent with
   * exactly its digits). Only max_budget is sent. Returns LiteLLM's answer: its max_budget is what LiteLLM
   * says it now has (absent when it did not say).
   */
  async setMaxBudget(key: string, maxBudget: string, stats?: CallStats): Promise<KeyInfo> {
    let body: JsonText;
    try {
      body = new JsonText(jsonWithMoney({ key }, { max_budget: maxBudget }));
    } catch {
      throw new LiteLLMError(
        `refusing to send max_budget ${JSON.stringify(maxBudget)}`,
        null,
        "invalid_request",
        false,
        0,
      );
    }
    const res = await this.request("POST", "/key/update", body, anyObject, stats);
    return keyRow.parse(res);
  }

  /** One key, by raw value or sha256 token; null when LiteLLM does not know it (404, or 401 in older releases). */
  async keyInfo(key: string, stats?: CallStats): Promise<KeyInfo | null> {
    try {
      const res = await this.request("GET", `/key/info?key=${encodeURIComponent(key)}`, undefined, infoResponse, stats);
      return res.info;
    } catch (e) {
      if (
        e instanceof LiteLLMError &&
        (e.status === 404 || (e.status === 401 && /does not exist|not found/i.test(e.message)))
      ) {
        return null;
      }
      throw e;
    }
  }

  /**
   * Many keys in one request (POST /v2/key/info). Returns rows keyed by token; keys LiteLLM does not
   * know are absent. Only when the batch route is missing (404/405): one /key/info per key, 8 at a time.
   */
  async keysInfo(tokens: string[], stats?: CallStats): Promise<Map<string, SpendRow>> {
    const out = new Map<string, SpendRow>();
    if (tokens.length === 0) return out;
    try {
      const res = await this.request("POST", "/v2/key/info", { keys: tokens }, infoV2Response, stats);
      for (const row of res.info) if (row.token) out.set(row.token, row);
      return out;
    } catch (e) {
      if (!(e instanceof LiteLLMError) || (e.status !== 404 && e.status !== 405)) throw e;
      log.warn("litellm /v2/key/info missing, falling back to /key/info per key", { keys: tokens.length });
    }
    const queue = [...tokens];
    const worker = async () => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
        const row = await this.keyInfo(t, stats);
        if (row) out.set(row.token ?? t, { ...row, token: row.token ?? t });
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, tokens.length) }, worker));
    return out;
  }

  /**
   * One page of LiteLLM's daily usage rows for one UTC day (GET /user/daily/activity, open-source proxy; the
   * master key sees every user), folded per key and model group. Pages cover LiteLLM's rows once each
   * (ordered by date and id), so a pull sums every page of the day.
   */
  async dailyActivity(
    day: string,
    page: number,
    pageSize: number,
    stats?: CallStats,
  ): Promise<{ rows: UsageRow[]; totalPages: number }> {
    const q = new URLSearchParams({ start_date: day, end_date: day, page: String(page), page_size: String(pageSize) });
    const res = await this.request("GET", `/user/daily/activity?${q}`, undefined, activityResponse, stats);
    const rows: UsageRow[] = [];
    for (const d of res.results) {
      for (const [model, group] of Object.entries(d.breakdown.model_groups)) {
        for (const [token, k] of Object.entries(group.api_key_breakdown)) {
          rows.push({
            token,
            model,
            spend: k.metrics.spend,
            requests: k.metrics.successful_requests ?? 0,
            input_tokens: k.metrics.prompt_tokens ?? 0,
            output_tokens: k.metrics.completion_tokens ?? 0,
          });
        }
      }
    }
    return { rows, totalPages: res.metadata.total_pages };
  }

  async deleteKeys(keys: string[], stats?: CallStats): Promise<string[]> {
    try {
      const res = await this.request("POST", "/key/delete", { keys }, deleteResponse, stats);
      return res.deleted_keys.map(String);
    } catch (e) {
      if (e instanceof LiteLLMError && e.status === 404) return []; // already gone: deleting is idempotent
      throw e;
    }
  }

  /**
   * Liveness for the health check: one GET, no retries, no circuit breaker (it reports the breaker
   * separately), no credentials sent. ok = LiteLLM answered 2xx within the timeout.
   */
  async liveliness(
    timeoutMs = Math.min(this.opts.timeoutMs, 3000),
  ): Promise<{ ok: boolean; status: number | null; latency_ms: number; error?: string }> {
    const started = performance.now();
    try {
      const res = await this.doFetch(`${this.opts.baseUrl.replace(/\/$/, "")}/health/liveliness`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body?.cancel();
      const latency = Math.round(performance.now() - started);
      return res.ok
        ? { ok: true, status: res.status, latency_ms: latency }
        : { ok: false, status: res.status, latency_ms: latency, error: `http ${res.status}` };
    } catch (e) {
      const timeout = e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError");
      return {
        ok: false,
        status: null,
        latency_ms: Math.round(performance.now() - started),
        error: timeout ? `no answer within ${timeoutMs} ms` : "unreachable",
      };
    }
  }

  async blockKey(key: string, stats?: CallStats): Promise<void> {
    log.info("litellm block", { key: maskKey(key) });
    await this.request("POST", "/key/block", { key }, anyObject, stats);
  }

  async unblockKey(key: string, stats?: CallStats): Promise<void> {
    log.info("litellm unblock", { key: maskKey(key) });
    await this.request("POST", "/key/unblock", { key }, anyObject, stats);
  }
}

// --- inbound: LiteLLM's generic API logging callback (StandardLoggingPayload, batched) ---
const loggingPayload = z.object({
  id: z.string().nullish(), // the request's id: usage by model counts each once
  response_cost: money.nullish(),
  status: z.string().nullish(),
  model: z.string().nullish(),
  model_group: z.string().nullish(), // the name the caller asked for (the proxy's model_name)
  prompt_tokens: z.number().nullish(),
  completion_tokens: z.number().nullish(),
  startTime: z.number().nullish(), // epoch seconds
  metadata: z.object({
    user_api_key_hash: z.string().nullish(),
    user_api_key_spend: money.nullish(), // the key's spend when this request was authorised
  }).passthrough().nullish(),
}).passthrough();

/** A lower bound of a key's cumulative spend taken from one logged request: auth_spend + cost (added in SQL). */
export interface SpendHint {
  token: string;
  auth_spend: string;
  cost: string;
}

/** One logged request for usage by model (private.record_usage_events counts each id once). */
export interface UsageEvent {
  id: string;
  token: string;
  model: string;
  cost: string;
  input_tokens: number;
  output_tokens: number;
  start_time: number;
}

/**
 * Reads a callback body (log_format json_array, ndjson or single) into spend hints (spend at the
 * request's authorisation and its cost: private.record_spend_hints adds them, exactly) and usage events
 * (successful requests with an id, key, model, cost and start time). Entries without what each needs are
 * skipped: adding bare costs to a total could count a request twice, a cumulative lower bound cannot.
 * Throws on a body that is not JSON at all.
 */
export function readLoggedRequests(body: string): { hints: SpendHint[]; usage: UsageEvent[]; entries: number } {
  const text = body.trim();
  let items: unknown[];
  if (text.startsWith("[")) items = JSON.parse(text);
  else if (text.includes("\n")) items = text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  else items = [JSON.parse(text)];
  const hints: SpendHint[] = [];
  const usage: UsageEvent[] = [];
  for (const item of items) {
    const p = loggingPayload.safeParse(item);
    if (!p.success) continue;
    const { metadata: m, response_cost: cost, id, startTime } = p.data;
    const token = m?.user_api_key_hash;
    if (!token || cost == null || cost.startsWith("-")) continue;
    if (m?.user_api_key_spend != null) hints.push({ token, auth_spend: m.user_api_key_spend, cost });
    const model = p.data.model_group || p.data.model;
    if (id && model && startTime != null && (p.data.status ?? "success") === "success") {
      usage.push({
        id,
        token,
        model,
        cost,
        input_tokens: p.data.prompt_tokens ?? 0,
        output_tokens: p.data.completion_tokens ?? 0,
        start_time: startTime,
      });
    }
  }
  return { hints, usage, entries: items.length };
}

/** The spend hints of a callback body (readLoggedRequests). */
export function spendHintsFromLogs(body: string): { hints: SpendHint[]; entries: number } {
  const { hints, entries } = readLoggedRequests(body);
  return { hints, entries };
}

let shared: LiteLLMClient | undefined;

/** The client for this isolate, configured from env (LITELLM_BASE_URL, LITELLM_MASTER_KEY, timeouts). */
export function litellm(): LiteLLMClient {
  if (!shared) {
    const c = config();
    shared = new LiteLLMClient({
      baseUrl: c.LITELLM_BASE_URL,
      masterKey: c.LITELLM_MASTER_KEY,
      timeoutMs: c.LITELLM_TIMEOUT_MS,
      maxRetries: c.LITELLM_MAX_RETRIES,
      breakerThreshold: c.LITELLM_BREAKER_THRESHOLD,
      breakerCooldownMs: c.LITELLM_BREAKER_COOLDOWN_MS,
    });
  }
  return shared;
}
