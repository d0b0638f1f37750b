// rotate-key: replaces a user's LiteLLM key with a new one that carries the remaining credit exactly; the
// old key is blocked (deleted by reconcile-spend once its spend has settled). verify_jwt is off; the
// function checks its callers itself:
//   - a signed-in user (dashboard) rotates their own key: POST {} with their session JWT (verified in
//     _shared/auth.ts); at most one rotation per rotation_user_min_interval_seconds;
//   - an operator rotates any user's key: POST {"user_id": "..."} with a secret API key (or the legacy
//     service role key) in `apikey` or `Authorization: Bearer` (`npm run admin -- rotate <user>`).
// Safe to interrupt: the state machine is in SQL and every step is idempotent, so calling this again
// continues an unfinished rotation (ops-sweep also finishes it within minutes). The answer never holds
// the full key; the dashboard reads it from my_key.
//   200 {state: "done", key_masked, max_budget, ...}   202 {state: "waiting", resume_in_seconds}
//   409 no_active_key | rotation_in_progress   429 too_soon   503 LiteLLM unavailable (rerun continues)
import { z } from "zod";
import { requireUser } from "../_shared/auth.ts";
import { handler, HttpError, isServiceCaller, json, parseBody } from "../_shared/http.ts";
import { LiteLLMError } from "../_shared/litellm.ts";
import { rotateUserKey } from "../_shared/rotation.ts";

const body = z.object({
  user_id: z.string().uuid().optional(),
  requested_by: z.string().trim().min(1).max(100).optional(), // operators: who asked (audit)
}).strict();

Deno.serve(handler("rotate-key", async (req) => {
  if (req.method !== "POST") throw new HttpError(405, "method_not_allowed", "use POST");
  const opts = await parseBody(req, body, 'send {} (your own key) or, with a secret API key, {"user_id": "<uuid>"}');
  let userId: string;
  let requestedBy: string;
  let rateLimited: boolean;
  if (isServiceCaller(req)) {
    if (!opts.user_id) throw new HttpError(400, "invalid_request", "give the user_id whose key to rotate");
    userId = opts.user_id;
    requestedBy = `admin:${opts.requested_by ?? "service_role"}`;
    rateLimited = false;
  } else {
    const user = await requireUser(req);
    if (opts.user_id && opts.user_id !== user.id) {
      throw new HttpError(403, "forbidden", "you can only rotate your own key");
    }
    if (opts.requested_by) throw new HttpError(400, "invalid_request", "send {} to rotate your key");
    userId = user.id;
    requestedBy = "user";
    rateLimited = true;
  }
  try {
    const r = await rotateUserKey(userId, requestedBy, { rateLimited });
    return json(r, r.state === "done" ? 200 : 202);
  } catch (e) {
    if (e instanceof LiteLLMError) {
      throw new HttpError(
        503,
        "litellm_unavailable",
        "LiteLLM did not answer; the rotation is saved and finishes when you try again (or by itself within minutes)",
      );
    }
    throw e;
  }
}));
