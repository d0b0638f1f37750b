// Model price table and the deterministic token rules of the fake LLM.
//
// LiteLLM computes cost = prompt_tokens * input_cost_per_token + completion_tokens *
// output_cost_per_token (model_prices_and_context_window.json). The emulator keeps the same
// formula with a tiny fixed table; token counts are deterministic so tests can predict spend.

export interface ModelPrice {
  input_cost_per_token: number;
  output_cost_per_token: number;
  owned_by: string;
}

export const PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  // Real OpenAI list prices (USD per token): 0.15 / 0.60 per 1M tokens.
  "gpt-4o-mini": {
    input_cost_per_token: 0.00000015,
    output_cost_per_token: 0.0000006,
    owned_by: "openai",
  },
  // 2.50 / 10.00 per 1M tokens.
  "gpt-4o": {
    input_cost_per_token: 0.0000025,
    output_cost_per_token: 0.00001,
    owned_by: "openai",
  },
  // Test model: $1 per 1k tokens both ways, so a handful of calls burns a $2 budget.
  "test-expensive": {
    input_cost_per_token: 0.001,
    output_cost_per_token: 0.001,
    owned_by: "litellm-emulator",
  },
  // Test model that never costs anything (spend stays put).
  "test-free": {
    input_cost_per_token: 0,
    output_cost_per_token: 0,
    owned_by: "litellm-emulator",
  },
});

/** The fixed assistant reply; streamed word by word. */
export const REPLY_TEXT =
  "This is a deterministic reply from the LiteLLM emulator.";

/** Upper bound on completion tokens for every call (also the default). */
export const MAX_COMPLETION_TOKENS = 16;

type Message = { content?: unknown };

/** Characters of all message contents (string content or text parts). */
function contentChars(messages: Message[]): number {
  let n = 0;
  for (const m of messages) {
    const c = m?.content;
    if (typeof c === "string") n += c.length;
    else if (Array.isArray(c)) {
      for (const part of c) {
        if (
          part && typeof part === "object" &&
          typeof (part as { text?: unknown }).text === "string"
        ) {
          n += (part as { text: string }).text.length;
        }
      }
    }
  }
  return n;
}

/** prompt_tokens = ceil(chars / 4), at least 1. */
export function promptTokens(messages: Message[]): number {
  return Math.max(1, Math.ceil(contentChars(messages) / 4));
}

/** completion_tokens = clamp(max_completion_tokens ?? max_tokens ?? 16, 1, 16). */
export function completionTokens(
  body: { max_tokens?: unknown; max_completion_tokens?: unknown },
): number {
  const asked = typeof body.max_completion_tokens === "number"
    ? body.max_completion_tokens
    : typeof body.max_tokens === "number"
    ? body.max_tokens
    : MAX_COMPLETION_TOKENS;
  return Math.min(MAX_COMPLETION_TOKENS, Math.max(1, Math.floor(asked)));
}

export function costOf(
  model: string,
  prompt: number,
  completion: number,
): number {
  const p = PRICES[model];
  return prompt * p.input_cost_per_token + completion * p.output_cost_per_token;
}

export function isKnownModel(model: unknown): model is string {
  return typeof model === "string" && Object.hasOwn(PRICES, model);
}
