// The generic API logging callback of the real proxy (callback_type: generic_api): every costed request
// becomes a StandardLoggingPayload, queued and POSTed in batches (log_format json_array) to a configured
// endpoint with configured headers. Delivery is best effort, as in LiteLLM: a failed batch is dropped.

export interface CallbackConfig {
  endpoint: string | null;
  headers: Record<string, string>;
  flush_ms: number;
}

export interface LoggedRequest {
  token: string;
  alias: string | null;
  userId: string | null;
  spendAtAuth: number; // the key's spend when the request was admitted (metadata.user_api_key_spend)
  maxBudget: number | null;
  cost: number;
  model: string;
  promptTokens: number;
  completionTokens: number;
  startTime: number;
}

export class GenericApiLogger {
  config: CallbackConfig;
  private queue: unknown[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  sent = 0;
  failed = 0;

  constructor(config: CallbackConfig) {
    this.config = { ...config };
    this.restart();
  }

  configure(patch: Partial<CallbackConfig>): CallbackConfig {
    this.config = { ...this.config, ...patch };
    this.restart();
    return { ...this.config };
  }

  log(r: LoggedRequest): void {
    if (!this.config.endpoint) return;
    const end = Date.now() / 1000;
    this.queue.push({
      id: `chatcmpl-${crypto.randomUUID()}`,
      call_type: "acompletion",
      status: "success",
      response_cost: r.cost,
      model: r.model,
      prompt_tokens: r.promptTokens,
      completion_tokens: r.completionTokens,
      total_tokens: r.promptTokens + r.completionTokens,
      startTime: r.startTime / 1000,
      endTime: end,
      metadata: {
        user_api_key_hash: r.token,
        user_api_key_alias: r.alias,
        user_api_key_user_id: r.userId,
        user_api_key_spend: r.spendAtAuth,
        user_api_key_max_budget: r.maxBudget,
      },
    });
  }

  async flush(): Promise<void> {
    if (!this.config.endpoint || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    try {
      const res = await fetch(this.config.endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...this.config.headers },
        body: JSON.stringify(batch),
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel();
      if (res.ok) this.sent += batch.length;
      else this.failed += batch.length;
    } catch {
      this.failed += batch.length;
    }
  }

  dispose(): void {
    clearInterval(this.timer);
  }

  private restart(): void {
    clearInterval(this.timer);
    this.timer = this.config.endpoint ? setInterval(() => void this.flush(), this.config.flush_ms) : undefined;
  }
}
