// POST /chat/completions (and /v1/...): a deterministic fake LLM behind the proxy's budget check.
//
// As in the proxy, the budget is checked before the call (spend >= max_budget is refused) and the cost is
// added after it, so concurrent calls can all pass and the last one overshoots. A stream is costed when it
// ends. cost = prompt_tokens * input price + completion_tokens * output price, as LiteLLM prices calls.
import { type Handler, json, proxyError, readJson, sleep } from "./http.ts";
import type { Caller, EmulatorState } from "./state.ts";
import type { KeyRow } from "./store.ts";

/** USD per token [input, output], and the provider LiteLLM would route the model group to. */
const PRICES: Record<string, [number, number, string]> = {
  "gpt-4o-mini": [0.00000015, 0.0000006, "openai"], // OpenAI's list price: 0.15 / 0.60 per 1M tokens
  "claude-3-5-haiku": [0.0000008, 0.000004, "anthropic"], // Anthropic's list price: 0.80 / 4 per 1M tokens
  "test-expensive": [0.001, 0.001, "openai"], // $1 per 1k tokens: a few calls use up a $2 budget
  "test-free": [0, 0, "openai"], // never moves spend
};
const REPLY = "This is a deterministic reply from the LiteLLM emulator.";
const MAX_COMPLETION = 16; // completion tokens: max_completion_tokens ?? max_tokens ?? 16, clamped to 1..16

interface Body {
  model?: unknown;
  messages?: { content?: unknown }[];
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
  stream?: unknown;
}

/** prompt_tokens = ceil(characters of string contents / 4), at least 1. */
function promptTokens(messages: Body["messages"]): number {
  const chars = (Array.isArray(messages) ? messages : [])
    .reduce((n, m) => n + (typeof m?.content === "string" ? m.content.length : 0), 0);
  return Math.max(1, Math.ceil(chars / 4));
}

function completionTokens(b: Body): number {
  const asked = [b.max_completion_tokens, b.max_tokens].find((v) => typeof v === "number") as number | undefined;
  return Math.min(MAX_COMPLETION, Math.max(1, Math.floor(asked ?? MAX_COMPLETION)));
}

export function chatRoutes(state: EmulatorState): Record<string, Handler> {
  const chat: Handler = async (req) => {
    const caller = state.authenticate(req);
    const body = ((await readJson(req).catch(() => null)) ?? {}) as Body;
    const row = caller.master ? null : caller.row;
    if (row && row.max_budget !== null && row.spend >= row.max_budget) {
      const msg = `Budget has been exceeded! Current cost: ${row.spend}, Max budget: ${row.max_budget}`;
      throw proxyError(400, msg, "budget_exceeded", null);
    }
    const model = typeof body.model === "string" ? body.model : "";
    const price = PRICES[model];
    if (!price) throw proxyError(400, `Invalid model name passed in model=${model}`, "None");

    const prompt = promptTokens(body.messages);
    const completion = completionTokens(body);
    const cost = prompt * price[0] + completion * price[1];
    const call: Call = { cost, model, provider: price[2], tokens: [prompt, completion], startTime: Date.now() / 1000 };
    const record = () => recordCost(state, caller, call);
    const content = REPLY.split(" ").slice(0, completion).join(" ");
    const finish = completion >= MAX_COMPLETION ? "stop" : "length";
    const base = { id: `chatcmpl-${crypto.randomUUID()}`, created: Math.floor(Date.now() / 1000), model };
    if (body.stream === true) return stream(state.config.stream_chunk_delay_ms, base, content, finish, record);

    record();
    return json(200, {
      ...base,
      object: "chat.completion",
      choices: [{ index: 0, finish_reason: finish, message: { role: "assistant", content } }],
      usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
    }, { "x-litellm-response-cost": String(cost) });
  };
  return { "POST /chat/completions": chat, "POST /v1/chat/completions": chat };
}

/** A costed call: what the spend counters, the daily table and the logging callback record. */
export interface Call {
  cost: number;
  model: string; // the model group the caller asked for (no aliases here: model = model group)
  provider: string;
  tokens: [number, number]; // prompt, completion
  startTime: number; // epoch seconds
}

/** Adds the cost to the key (if it still exists) and its daily row, and logs the request to the callback. */
function recordCost(state: EmulatorState, caller: Caller, call: Call) {
  const row: KeyRow | undefined = caller.master ? undefined : state.store.get(caller.row.token);
  if (!row) return;
  // LiteLLM logs the spend its auth check saw at admission; the emulator logs the spend just before this cost
  // is added, which is the same for calls one at a time and higher for overlapping ones (README.md).
  state.callback.log(row, row.spend, call);
  state.store.setSpend(row, row.spend + call.cost, state.immediateWrites);
  state.daily.add({
    user_id: row.user_id ?? "",
    date: new Date(call.startTime * 1000).toISOString().slice(0, 10),
    api_key: row.token,
    model: call.model,
    model_group: call.model,
    custom_llm_provider: call.provider,
    endpoint: "/chat/completions",
    prompt_tokens: call.tokens[0],
    completion_tokens: call.tokens[1],
    spend: call.cost,
  }, state.immediateWrites);
}

/** SSE chunks word by word, then [DONE]; costed at the end. A stream the client abandons is not costed. */
function stream(delayMs: number, base: object, content: string, finish: string, record: () => void): Response {
  const chunk = (delta: object, finish_reason: string | null) => {
    const choices = [{ index: 0, delta, finish_reason }];
    return `data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices })}\n\n`;
  };
  const events = [
    chunk({ role: "assistant", content: "" }, null),
    ...content.split(" ").map((w, i) => chunk({ content: i === 0 ? w : ` ${w}` }, null)),
    chunk({}, finish),
  ];
  const enc = new TextEncoder();
  const gone = new AbortController();
  return new Response(
    new ReadableStream({
      async start(controller) {
        for (const ev of events) {
          if (gone.signal.aborted) return;
          controller.enqueue(enc.encode(ev));
          if (delayMs > 0) await sleep(delayMs, gone.signal);
        }
        if (gone.signal.aborted) return;
        controller.enqueue(enc.encode("data: [DONE]\n\n"));
        record(); // before the client can read [DONE] to its end
        controller.close();
      },
      cancel: () => gone.abort(),
    }),
    { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } },
  );
}
