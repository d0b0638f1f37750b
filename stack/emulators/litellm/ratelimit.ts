// Per-key rpm / tpm limits over a 60 s window, like LiteLLM's parallel request limiter (v3):
// a request is refused with 429 before the call when the key already used its requests or
// tokens for the current window. Tokens are counted after the call (the limiter cannot know
// them before), so the request that crosses tpm_limit still goes through.

import { proxyError } from "./errors.ts";
import type { KeyRow } from "./store.ts";

export const WINDOW_MS = 60_000;

interface Window {
  start: number;
  requests: number;
  tokens: number;
}

/** "%Y-%m-%d %H:%M:%S UTC", the format of LiteLLM's reset_at header. */
function resetStamp(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(
    /\.\d+Z$/,
    " UTC",
  );
}

export class RateLimits {
  private windows = new Map<string, Window>();

  private window(token: string, now: number): Window {
    let w = this.windows.get(token);
    if (!w || now - w.start >= WINDOW_MS) {
      w = { start: now, requests: 0, tokens: 0 };
      this.windows.set(token, w);
    }
    return w;
  }

  /** Count this request against the key's window, or throw the proxy's 429. */
  admit(row: KeyRow, now = Date.now()): void {
    if (row.rpm_limit === null && row.tpm_limit === null) return;
    const w = this.window(row.token, now);
    const over = (type: "requests" | "tokens", limit: number, used: number) => {
      const reset = resetStamp(now + WINDOW_MS);
      return proxyError(
        429,
        `Rate limit exceeded for api_key: ${row.token}. Limit type: ${type}. ` +
          `Current limit: ${limit}, Remaining: ${
            Math.max(0, limit - used)
          }. Limit resets at: ${reset}`,
        "throttling_error",
        "None",
        {
          "retry-after": String(WINDOW_MS / 1000),
          "rate_limit_type": type,
          "reset_at": reset,
        },
      );
    };
    if (row.rpm_limit !== null && w.requests + 1 > row.rpm_limit) {
      throw over("requests", row.rpm_limit, w.requests);
    }
    if (row.tpm_limit !== null && w.tokens >= row.tpm_limit) {
      throw over("tokens", row.tpm_limit, w.tokens);
    }
    w.requests++;
  }

  /** Record the tokens a finished call used. */
  addTokens(row: KeyRow, tokens: number, now = Date.now()): void {
    if (row.tpm_limit === null && row.rpm_limit === null) return;
    this.window(row.token, now).tokens += tokens;
  }

  forget(token: string): void {
    this.windows.delete(token);
  }

  clear(): void {
    this.windows.clear();
  }
}
