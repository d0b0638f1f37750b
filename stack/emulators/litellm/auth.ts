// user_api_key_auth, reduced to what virtual keys and the master key need.
//
// The checks run in the proxy's order, and each failure has the proxy's message and type:
// no key -> malformed header -> master key? -> not "sk-" -> unknown -> blocked -> expired.
// Route permissions (admin-only routes, /key/info about another key) come after.

import { maskKey, proxyError } from "./errors.ts";
import type { EmulatorState } from "./state.ts";
import type { KeyRow } from "./store.ts";
import { hashToken } from "./store.ts";

export type Caller = { kind: "master"; key: string } | {
  kind: "virtual";
  key: string;
  row: KeyRow;
};

/** The presented key: x-litellm-api-key wins over Authorization (LiteLLM's custom header). */
function presentedKey(req: Request): string | null {
  const custom = req.headers.get("x-litellm-api-key");
  if (custom !== null && custom.trim() !== "") {
    const v = custom.trim();
    return v.startsWith("Bearer ") ? v.slice(7).trim() : v;
  }
  const auth = req.headers.get("authorization");
  if (auth === null || auth.trim() === "") return null;
  const v = auth.trim();
  if (!/^Bearer\s/i.test(v) && v !== "Bearer") {
    throw proxyError(
      401,
      `Authentication Error, Malformed API Key passed in. Ensure Key has \`Bearer \` prefix. Passed in: ${
        maskKey(v)
      }`,
      "auth_error",
    );
  }
  const key = v.replace(/^Bearer/i, "").trim();
  return key === "" ? null : key;
}

export function authenticate(req: Request, state: EmulatorState): Caller {
  const key = presentedKey(req);
  if (key === null) {
    throw proxyError(
      401,
      "Authentication Error, No api key passed in.",
      "auth_error",
    );
  }
  if (key === state.masterKey) return { kind: "master", key };
  if (!key.startsWith("sk-")) {
    throw proxyError(
      401,
      `Authentication Error, LiteLLM Virtual Key expected. Received=${
        maskKey(key)
      }, expected to start with 'sk-'.`,
      "auth_error",
    );
  }
  const token = hashToken(key);
  const row = state.store.get(token);
  if (!row) {
    throw proxyError(
      401,
      `Authentication Error, Invalid proxy server token passed. key=${token}, not found in db. Create key via \`/key/generate\` call.`,
      "token_not_found_in_db",
      "key",
    );
  }
  if (row.blocked === true) {
    throw proxyError(
      401,
      "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.",
      "auth_error",
    );
  }
  if (row.expires !== null && row.expires < Date.now()) {
    throw proxyError(
      400,
      `Authentication Error - Expired Key. Key Expiry time ${
        new Date(row.expires).toISOString()
      } and current time ${new Date().toISOString()}`,
      "expired_key",
      null,
    );
  }
  return { kind: "virtual", key, row };
}

/** LiteLLM masks the caller's user_id in route-permission errors. */
function maskUserId(id: string): string {
  return id.length > 8
    ? `${id.slice(0, 6)}${"*".repeat(id.length - 8)}${id.slice(-2)}`
    : id;
}

/** Management routes a plain virtual key may not call (RouteChecks, 401). */
export function requireAdmin(caller: Caller, route: string): void {
  if (caller.kind === "master") return;
  const userId = caller.row.user_id === null
    ? "unknown"
    : maskUserId(caller.row.user_id);
  throw proxyError(
    401,
    `Authentication Error, Only proxy admin can be used to generate, delete, update info for new keys/users/teams. Route=${route}. Your role=unknown. Your user_id=${userId}`,
    "auth_error",
  );
}
