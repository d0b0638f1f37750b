// Which page shows: the sign-in form without a session, the dashboard with one.
import type { Session } from "@supabase/supabase-js";
import { root, switchUser, userId } from "./app.ts";
import { showAuth } from "./auth.ts";
import { showDashboard, stopRefresh } from "./dashboard.ts";

export function onSession(session: Session | null) {
  const id = session?.user.id ?? null;
  if (id === userId && root.dataset.view) return; // token refresh or the same user: nothing to redraw
  stopRefresh();
  switchUser(id, session?.user.email ?? "");
  if (session) showDashboard();
  else showAuth("signin");
}
