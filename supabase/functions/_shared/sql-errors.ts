// SQL refuses a request with `raise exception '<words>' using hint = '<reason>'`: the hint is the stable
// reason, and this one table turns it into the HTTP answer (the hint is the error code). The SQL's words
// are written for operators; a function may word a refusal for its own callers, or answer a hint its own
// way (checkout: a user without an email is a 400, not an unknown user).
import { HttpError } from "./http.ts";

const STATUS: Record<string, number> = {
  unknown_plan: 400,
  unknown_currency: 400,
  currency_disabled: 400,
  no_price: 400,
  unknown_user: 404,
  no_active_key: 409,
  too_soon: 429,
};

/** Per hint: the message callers read, or the whole answer [status, code, message]. */
export type Wording = Record<string, string | [number, string, string]>;

/** The HttpError a SQL refusal calls for; anything else (no hint, or one not listed) comes back as it was. */
export function sqlRefusal(e: unknown, wording: Wording = {}): unknown {
  const hint = (e as { hint?: unknown } | null)?.hint;
  if (typeof hint !== "string") return e;
  const w = wording[hint];
  if (Array.isArray(w)) return new HttpError(...w);
  if (!STATUS[hint]) return e;
  return new HttpError(STATUS[hint], hint, w ?? (e as Error).message);
}
