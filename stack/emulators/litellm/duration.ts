// LiteLLM's duration strings ("30s", "30m", "30h", "30d", "2w", "1mo") for `duration`
// (key expiry) and `budget_duration` (spend reset period).

import { proxyError } from "./errors.ts";

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Milliseconds from `from` until `from + duration` (months are calendar months). */
export function durationMs(duration: string, from = Date.now()): number {
  const m = /^(\d+)(mo|s|m|h|d|w)$/.exec(duration.trim());
  if (!m) {
    // duration_in_seconds raises ValueError; the route turns it into a 500 ProxyException.
    throw proxyError(
      500,
      `Unsupported duration unit, passed duration: ${duration}`,
      "internal_server_error",
    );
  }
  const n = Number(m[1]);
  if (m[2] === "mo") {
    const d = new Date(from);
    d.setUTCMonth(d.getUTCMonth() + n);
    return d.getTime() - from;
  }
  return n * UNIT_MS[m[2]];
}
