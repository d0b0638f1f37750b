// Who is calling: the signed-in user behind the request's JWT, asked of Supabase Auth (works with both
// symmetric and asymmetric project JWT keys, and sees revoked sessions).
import { createClient } from "@supabase/supabase-js";
import { config } from "./config.ts";
import { HttpError } from "./http.ts";

export interface CallerUser {
  id: string;
  email: string;
}

export async function requireUser(req: Request): Promise<CallerUser> {
  const auth = req.headers.get("Authorization") ?? "";
  const jwt = auth.startsWith("Bearer ") ? auth.slice(7) : "";
  if (!jwt) throw new HttpError(401, "not_signed_in", "sign in first");
  const c = config();
  const supabase = createClient(c.SUPABASE_URL, c.SUPABASE_ANON_KEY, { auth: { persistSession: false, autoRefreshToken: false } });
  const { data, error } = await supabase.auth.getUser(jwt);
  if (error || !data.user) {
    if (error && (error.status ?? 0) >= 500) throw new HttpError(503, "auth_unavailable", "could not check your session; try again");
    throw new HttpError(401, "not_signed_in", "your session is not valid; sign in again");
  }
  if (!data.user.email) throw new HttpError(400, "no_email", "your account has no email address, which Paystack requires");
  return { id: data.user.id, email: data.user.email };
}
