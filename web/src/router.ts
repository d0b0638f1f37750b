// Which page shows: the sign-in form without a session; with one, the page the address names:
// #/receipt/<reference> (a payment's receipt, linkable), #/usage (usage by model, with its range),
// #/notifications, #/billing (saved card, auto top-up), #/buy?plan=&currency= (the dashboard with that pack
// preselected: the low-balance notification's link) or the dashboard ("", "#/", and "#/buy": its buy
// panel). Other fragments are in-page anchors (#main, #buy) and leave the page as it is.
import type { Session } from "@supabase/supabase-js";
import { root, switchUser, userId } from "./app.ts";
import { showAuth } from "./auth.ts";
import { showDashboard, stopRefresh } from "./dashboard.ts";
import { takeBuyLink } from "./buy.ts";
import { isNotificationsRoute, refreshUnread, showNotifications } from "./notifications.ts";
import { receiptReference, showReceipt } from "./receipt.ts";
import { billingRoute, showBilling } from "./topup.ts";
import { showUsage, usageRoute } from "./usage.ts";

export function onSession(session: Session | null) {
  const id = session?.user.id ?? null;
  if (id === userId && root.dataset.view) return; // token refresh or the same user: nothing to redraw
  stopRefresh();
  switchUser(id, session?.user.email ?? "");
  if (session) showPage(true);
  else showAuth("signin");
}

/** The address changed (a receipt link, Back): show its page when signed in. */
export function onRoute() {
  if (userId) showPage(false);
}

function showPage(fresh: boolean) {
  drawPage(fresh);
  void refreshUnread(); // every page draws a fresh top bar
}

function drawPage(fresh: boolean) {
  const reference = receiptReference();
  if (reference) {
    stopRefresh();
    return void showReceipt(reference);
  }
  if (usageRoute()) {
    stopRefresh();
    return void showUsage();
  }
  if (isNotificationsRoute()) {
    stopRefresh();
    return showNotifications();
  }
  if (billingRoute()) {
    stopRefresh();
    return void showBilling();
  }
  if (takeBuyLink()) return showDashboard();
  const anchor = location.hash.length > 1 && !location.hash.startsWith("#/");
  if (fresh || (!anchor && root.dataset.view !== "dashboard")) showDashboard();
  if (location.hash === "#/buy") document.getElementById("buy")?.focus(); // a low-balance notification's link
}
