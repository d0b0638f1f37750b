// send-notifications: sends the emails of new notifications (_shared/notifications.ts). Called through
// pg_net right after a notification is recorded (body {"source":"notify","kick":<id>}: the kick it takes
// first, _shared/notifications.ts), and every minute by pg_cron while emails are due (retries
// with back-off), with the cron secret; operators may call it with a secret key.
import { handler, json, requireCronOrService } from "../_shared/http.ts";
import { deliverNotificationEmails } from "../_shared/notifications.ts";

Deno.serve(handler("send-notifications", async (req) => {
  requireCronOrService(req);
  const body = await req.json().catch(() => null);
  const kick = Number.isSafeInteger(body?.kick) ? body.kick as number : null;
  return json(await deliverNotificationEmails({ budgetMs: 20_000, kick }));
}));
