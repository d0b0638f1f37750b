// litellm-spend-callback: LiteLLM's generic API logging callback posts batches of logged requests here,
// so a user's balance moves within seconds. Each entry gives a lower bound of its key's spend; the SQL
// keeps the largest. The minute-by-minute pull (reconcile-spend) stays the truth and the two never add up.
// Each successful request also counts once (by its id) in usage by model (private.record_usage_events).
// LiteLLM config: callback_settings: {<name>: {callback_type: generic_api, endpoint:
// <SUPABASE_URL>/functions/v1/litellm-spend-callback, headers: {Authorization: "Bearer <secret>"}}}.
import { config } from "../_shared/config.ts";
import { db } from "../_shared/db.ts";
import { bearerToken, handler, HttpError, json, timingSafeEqual } from "../_shared/http.ts";
import { readLoggedRequests } from "../_shared/litellm.ts";

Deno.serve(handler("litellm-spend-callback", async (req) => {
  if (req.method !== "POST") throw new HttpError(405, "method_not_allowed", "use POST");
  const secret = config().LITELLM_CALLBACK_SECRET;
  if (!secret) {
    throw new HttpError(404, "not_configured", "the spend callback is off (LITELLM_CALLBACK_SECRET is not set)");
  }
  const token = bearerToken(req);
  if (!token || !timingSafeEqual(token, secret)) {
    throw new HttpError(401, "unauthorized", "wrong or missing callback secret");
  }
  let parsed;
  try {
    parsed = readLoggedRequests(await req.text());
  } catch {
    throw new HttpError(
      400,
      "invalid_json",
      "the body is not a JSON array, NDJSON or a JSON object of logged requests",
    );
  }
  const sql = db();
  let hints = { matched: 0, updated: 0 };
  if (parsed.hints.length > 0) {
    [{ result: hints }] = await sql<{ result: { matched: number; updated: number } }[]>`
      select private.record_spend_hints(${sql.json(parsed.hints as never)}) as result`;
  }
  let usage = { requests: 0, counted: 0 };
  if (parsed.usage.length > 0) {
    [{ result: usage }] = await sql<{ result: { requests: number; counted: number } }[]>`
      select private.record_usage_events(${sql.json(parsed.usage as never)}) as result`;
  }
  return json({ entries: parsed.entries, hints: parsed.hints.length, ...hints, usage });
}));
