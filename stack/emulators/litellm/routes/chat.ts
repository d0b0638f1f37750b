// The LLM routes: /chat/completions (and /v1/...), /models (and /v1/models).
//
// Enforcement follows the proxy: auth -> key model access -> budget (spend >= max_budget,
// checked BEFORE the call) -> rpm/tpm -> model routing -> the call -> cost added AFTER the
// call. So concurrent requests can all pass the budget check and the last one overshoots,
// exactly like production. Streams are costed when the stream ends.

import { authenticate, type Caller } from "../auth.ts";
import { jsonResponse, proxyError, pyFloat, pyRepr } from "../errors.ts";
import {
  completionTokens,
  costOf,
  isKnownModel,
  MAX_COMPLETION_TOKENS,
  PRICES,
  promptTokens,
  REPLY_TEXT,
} from "../pricing.ts";
import type { EmulatorState } from "../state.ts";
import { hashToken, type KeyRow } from "../store.ts";

type Handler = (
  req: Request,
  url: URL,
  state: EmulatorState,
) => Promise<Response>;
type Body = Record<string, unknown>;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Checks made before the (fake) provider call, in the proxy's order. */
function preCall(caller: Caller, model: unknown, state: EmulatorState): void {
  if (caller.kind !== "virtual") return; // the master key has no key budget or limits
  const row = caller.row;
  if (row.models.length > 0 && !row.models.includes("all-proxy-models")) {
    if (typeof model !== "string" || !row.models.includes(model)) {
      throw proxyError(
        401,
        `Authentication Error, key not allowed to access model. This key can only access models=${
          pyRepr(row.models)
        }. Tried to access ${String(model)}`,
        "key_model_access_denied",
        "model",
      );
    }
  }
  if (row.max_budget !== null && row.spend >= row.max_budget) {
    throw proxyError(
      state.config.budget_exceeded_status,
      `Budget has been exceeded! Current cost: ${
        pyFloat(row.spend)
      }, Max budget: ${pyFloat(row.max_budget)}`,
      "budget_exceeded",
      null,
    );
  }
  state.limits.admit(row);
}

/** After the call: add the cost to the key (if it still exists) and count its tokens. */
function recordUsage(
  state: EmulatorState,
  row: KeyRow | null,
  cost: number,
  tokens: number,
  logged?: { model: string; prompt: number; completion: number; startTime: number },
): void {
  if (!row || state.store.get(row.token) !== row) return;
  const spendBefore = row.spend;
  state.store.addSpend(row, cost, state.immediateWrites);
  state.limits.addTokens(row, tokens);
  if (logged) {
    state.callback.log({
      token: row.token, alias: row.key_alias, userId: row.user_id, spendAtAuth: spendBefore, maxBudget: row.max_budget,
      cost, model: logged.model, promptTokens: logged.prompt, completionTokens: logged.completion, startTime: logged.startTime,
    });
  }
}

function replyFor(
  completion: number,
): { content: string; finish: "stop" | "length" } {
  if (completion >= MAX_COMPLETION_TOKENS) {
    return { content: REPLY_TEXT, finish: "stop" };
  }
  return {
    content: REPLY_TEXT.split(" ").slice(0, completion).join(" "),
    finish: "length",
  };
}

const chat: Handler = async (req, _url, state) => {
  const caller = authenticate(req, state);
  // The proxy reads the body leniently (bad JSON = empty body), then fails on the model.
  let body: Body = {};
  try {
    const parsed = JSON.parse(await req.text());
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      body = parsed as Body;
    }
  } catch { /* empty or malformed body */ }
  const model = body.model;
  preCall(caller, model, state);

  if (!isKnownModel(model)) {
    throw proxyError(
      400,
      `400: ${
        pyRepr({
          error:
            `/chat/completions: Invalid model name passed in model=${
              typeof model === "string" ? model : ""
            }. ` +
            "Call `/v1/models` to view available models for your key.",
        })
      }`,
      "None",
    );
  }
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw proxyError(
      400,
      "litellm.BadRequestError: OpenAIException - Invalid 'messages': empty array or missing. Expected an array with minimum length 1.",
      "invalid_request_error",
      "messages",
    );
  }

  const row = caller.kind === "virtual" ? caller.row : null;
  const prompt = promptTokens(messages as { content?: unknown }[]);
  const completion = completionTokens(body);
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
  const cost = costOf(model, prompt, completion);
  const { content, finish } = replyFor(completion);
  const id = `chatcmpl-${crypto.randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);

  const headers: Record<string, string> = {
    "x-litellm-call-id": crypto.randomUUID(),
    "x-litellm-model-id": hashToken(model),
    "x-litellm-model-group": model,
    "x-litellm-model-api-base": "http://litellm-emulator.invalid/v1",
    "x-litellm-version": "emulator",
    // The key's spend as the auth check saw it (before this call), like the proxy.
    "x-litellm-key-spend": pyFloat(row ? row.spend : 0),
  };
  if (row && row.max_budget !== null) {
    headers["x-litellm-key-max-budget"] = pyFloat(row.max_budget);
  }

  if (state.config.latency_ms > 0) await sleep(state.config.latency_ms);

  if (body.stream === true) {
    const includeUsage = Boolean(
      (body.stream_options as { include_usage?: unknown } | undefined)
        ?.include_usage,
    );
    return streamResponse(state, row, {
      id,
      created,
      model,
      content,
      finish,
      usage,
      cost,
      includeUsage,
    }, headers);
  }

  recordUsage(state, row, cost, usage.total_tokens, {
    model, prompt: usage.prompt_tokens, completion: usage.completion_tokens, startTime: created * 1000,
  });
  headers["x-litellm-response-cost"] = pyFloat(cost);
  return jsonResponse(200, {
    id,
    created,
    model,
    object: "chat.completion",
    system_fingerprint: null,
    choices: [{
      finish_reason: finish,
      index: 0,
      message: {
        content,
        role: "assistant",
        tool_calls: null,
        function_call: null,
      },
    }],
    usage,
  }, headers);
};

interface StreamPlan {
  id: string;
  created: number;
  model: string;
  content: string;
  finish: string;
  usage: {
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
  };
  cost: number;
  includeUsage: boolean;
}

/** SSE "data: {...}\n\n" chunks, then "data: [DONE]"; the cost lands when the stream ends. */
function streamResponse(
  state: EmulatorState,
  row: KeyRow | null,
  p: StreamPlan,
  headers: Record<string, string>,
): Response {
  const enc = new TextEncoder();
  const chunk = (
    delta: Record<string, unknown>,
    finish: string | null,
    extra: Record<string, unknown> = {},
  ) => ({
    id: p.id,
    object: "chat.completion.chunk",
    created: p.created,
    model: p.model,
    system_fingerprint: null,
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...extra,
  });
  const words = p.content.split(" ");
  const events: unknown[] = [
    chunk({ role: "assistant", content: "" }, null),
    ...words.map((w, i) => chunk({ content: i === 0 ? w : ` ${w}` }, null)),
    chunk({}, p.finish),
  ];
  if (p.includeUsage) {
    events.push({
      id: p.id,
      object: "chat.completion.chunk",
      created: p.created,
      model: p.model,
      system_fingerprint: null,
      choices: [],
      usage: p.usage,
    });
  }
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      for (const ev of events) {
        if (cancelled) return;
        controller.enqueue(enc.encode(`data: ${JSON.stringify(ev)}\n\n`));
        if (state.config.stream_chunk_delay_ms > 0) {
          await sleep(state.config.stream_chunk_delay_ms);
        }
      }
      if (cancelled) return;
      controller.enqueue(enc.encode("data: [DONE]\n\n"));
      // Costed at the end of the stream (synchronously, before the client can read [DONE]).
      recordUsage(state, row, p.cost, p.usage.total_tokens, {
        model: p.model, prompt: p.usage.prompt_tokens, completion: p.usage.completion_tokens, startTime: p.created * 1000,
      });
      controller.close();
    },
    cancel() {
      // The client went away mid-stream: the emulator records nothing for it.
      cancelled = true;
    },
  });
  return new Response(stream, {
    status: 200,
    headers: {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      ...headers,
    },
  });
}

const models: Handler = (req, _url, state) => {
  const caller = authenticate(req, state);
  const allowed = caller.kind === "virtual" && caller.row.models.length > 0 &&
      !caller.row.models.includes("all-proxy-models")
    ? caller.row.models
    : null;
  const data = Object.entries(PRICES)
    .filter(([id]) => allowed === null || allowed.includes(id))
    .map(([id, p]) => ({
      id,
      object: "model",
      created: 1677610602,
      owned_by: p.owned_by,
    }));
  return Promise.resolve(jsonResponse(200, { data, object: "list" }));
};

export const chatRoutes: Record<string, Record<string, Handler>> = {
  "/chat/completions": { POST: chat },
  "/v1/chat/completions": { POST: chat },
  "/models": { GET: models },
  "/v1/models": { GET: models },
};
