// send-notifications: sends the emails of new notifications (_shared/notifications.ts). Called through
// pg_net right after a notification is recorded, and every minute by pg_cron while emails are due (retries
// with back-off), with the cron secret; operators may call it with a secret key.
import { handler, json, requireCronOrService } from "../_shared/http.ts";
import { deliverNotificationEmails } from "../_shared/notifications.ts";

Deno.serve(handler("send-notifications", async (req) => {
  requireCronOrService(req);
  await req.body?.cancel();
  return json(await deliverNotificationEmails({ budgetMs: 20_000 }));
}));
