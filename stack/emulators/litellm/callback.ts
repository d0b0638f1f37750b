// The proxy's generic API logging callback (callback_type: generic_api, log_format json_array): every
// costed request becomes a StandardLoggingPayload, queued and POSTed in batches to the endpoint with the
// configured headers. Best effort, as in LiteLLM: a failed batch is dropped.
import type { Call } from "./chat.ts";
import type { KeyRow } from "./store.ts";

export interface CallbackTarget {
  endpoint: string | null;
  headers: Record<string, string>;
}

const FLUSH_MS = 1000; // LiteLLM flushes every 5 s (or at 512 entries); quicker here so tests wait less

export class GenericApiLogger {
  private queue: unknown[] = [];
  private timer = setInterval(() => void this.flush(), FLUSH_MS);

  constructor(public target: CallbackTarget) {}

  /** One costed request; spendBefore goes out as user_api_key_spend (chat.ts says which spend that is). */
  log(row: KeyRow, spendBefore: number, call: Call): void {
    if (!this.target.endpoint) return;
    const [prompt, completion] = call.tokens;
    this.queue.push({
      id: `chatcmpl-${crypto.randomUUID()}`,
      call_type: "acompletion",
      status: "success",
      response_cost: call.cost,
      model: call.model,
      model_group: call.model,
      custom_llm_provider: call.provider,
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      startTime: call.startTime,
      endTime: Date.now() / 1000,
      metadata: {
        user_api_key_hash: row.token,
        user_api_key_alias: row.key_alias,
        user_api_key_user_id: row.user_id,
        user_api_key_spend: spendBefore,
        user_api_key_max_budget: row.max_budget,
      },
    });
  }

  async flush(): Promise<void> {
    const { endpoint, headers } = this.target;
    if (!endpoint || this.queue.length === 0) return;
    const body = JSON.stringify(this.queue);
    this.queue = [];
    try {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...headers },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel();
    } catch { /* dropped, as LiteLLM does */ }
  }

  dispose(): void {
    clearInterval(this.timer);
  }
}
