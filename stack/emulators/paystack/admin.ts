// Admin port (Bearer <secret key>): what Paystack's dashboard and a paying customer do, driven by tests:
// pay without the page, mobile money's later approval or abandonment, replays and hand-made events,
// edits to a transaction, disputes, the webhook URL and an outage. Routes that send an event wait for
// its first attempt and report it in `deliveries`; retries continue in the background.

import type { EmulatorContext } from "./context.ts";
import { answer, fail, hasBearer, json, parseSubunits, PaystackError, readBody } from "./http.ts";
import { CHANNELS, TEST_CARDS, type Transaction, transactionData } from "./store.ts";
import type { Attempt } from "./webhooks.ts";

const CARD_ALIASES: Record<string, string> = { success: "4084084084084081", declined: "4084080000005408" };
const RESOLUTIONS = ["merchant-accepted", "auto-accepted", "declined"];

type Body = Record<string, unknown>;
const ok = (message: string, data: unknown) => json(200, { status: true, message, data });
const bad = (message: string) => new PaystackError(400, message);

export function makeAdminHandler(ctx: EmulatorContext): (req: Request) => Promise<Response> {
  return (req) =>
    answer("admin", async () => {
      if (!hasBearer(req, ctx.secretKey)) return fail(401, "Invalid key");
      const url = new URL(req.url);
      const [root, what, reference, ...rest] = url.pathname.split("/").filter(Boolean);
      const routes = req.method === "GET" ? GETS : req.method === "POST" ? POSTS : {};
      const found = root === "admin" && Object.hasOwn(routes, what) && !rest.length;
      if (!found || (reference !== undefined) !== (what === "transactions")) {
        return fail(404, `Route not found: ${req.method} ${url.pathname}`);
      }
      const query = Object.fromEntries(url.searchParams);
      const body = req.method === "GET"
        ? { ...query, reference: reference ? decodeURIComponent(reference) : query.reference }
        : await readBody(req);
      return await routes[what](ctx, body);
    });
}

function mustTx(ctx: EmulatorContext, reference: unknown): Transaction {
  if (typeof reference !== "string" || reference === "") throw bad("reference is required");
  const tx = ctx.store.transactions.get(reference);
  if (!tx) throw new PaystackError(404, `Transaction reference not found: ${reference}`);
  return tx;
}

function paid(tx: Transaction, deliveries: Attempt[]): Response {
  const { reference, status, gateway_response } = tx;
  return ok(`Transaction ${status}`, { reference, status, gateway_response, deliveries });
}

async function completeNow(ctx: EmulatorContext, tx: Transaction): Promise<Attempt[]> {
  ctx.store.complete(tx);
  return [await ctx.chargeSuccess(tx)];
}

const configView = (ctx: EmulatorContext) => ({
  webhook_url: ctx.config.webhookUrl,
  retry_ms: ctx.config.retryMs,
  down: ctx.isDown(),
});

const GETS: Record<string, (ctx: EmulatorContext, body: Body) => Response> = {
  // Verify data plus what only the dashboard shows.
  transactions: (ctx, { reference }) => {
    const tx = mustTx(ctx, reference);
    return ok("Transaction retrieved", { ...transactionData(tx), channels: tx.channels, refunds: tx.refunds });
  },
  config: (ctx) => ok("Config", configView(ctx)),
  /** ?reference=&event=: the events sent, oldest first, each once (a replay is another one). */
  deliveries: (ctx, { reference, event }) =>
    ok("Deliveries retrieved", ctx.webhooks.list(reference as string | undefined, event as string | undefined)),
};

const POSTS: Record<string, (ctx: EmulatorContext, body: Body) => Promise<Response> | Response> = {
  /** As the customer: card (default; `card` a number or success/declined) or another channel. */
  pay: async (ctx, body) => {
    const tx = mustTx(ctx, body.reference);
    const channel = body.channel === undefined ? "card" : String(body.channel);
    if (!CHANNELS.includes(channel)) throw bad(`channel must be one of ${CHANNELS.join(", ")}`);
    const after = parseSubunits(body.complete_after_ms ?? 0);
    if (after === null) throw bad("complete_after_ms must be a non-negative integer");
    if (channel === "card") {
      const card = CARD_ALIASES[String(body.card ?? "success")] ?? String(body.card);
      const cvv = body.cvv === undefined ? TEST_CARDS[card.replace(/[\s-]/g, "")]?.cvv ?? "123" : String(body.cvv);
      ctx.store.charge(tx, card, cvv, body.expiry === undefined ? undefined : String(body.expiry));
    } else {
      ctx.store.payBy(tx, channel);
    }
    // The customer approves on their phone later; an abandon in between wins.
    if (tx.status === "pending" && after > 0) {
      setTimeout(() => tx.status === "pending" && completeNow(ctx, tx), after);
    }
    return paid(tx, tx.status === "success" && body.webhook !== false ? [await ctx.chargeSuccess(tx)] : []);
  },
  complete: async (ctx, body) => {
    const tx = mustTx(ctx, body.reference);
    return paid(tx, await completeNow(ctx, tx));
  },
  abandon: (ctx, body) => {
    const tx = mustTx(ctx, body.reference);
    ctx.store.abandon(tx);
    return paid(tx, []);
  },
  /** What verify reports from now on (events already sent keep their bytes). */
  mutate: (ctx, body) => {
    const tx = mustTx(ctx, body.reference);
    for (const field of ["amount", "requested_amount"] as const) {
      if (body[field] === undefined) continue;
      tx[field] = parseSubunits(body[field]) ?? Number.NaN;
      if (Number.isNaN(tx[field])) throw bad(`${field} must be an integer (subunits)`);
    }
    if (body.domain !== undefined && body.domain !== "test" && body.domain !== "live") {
      throw bad('domain must be "test" or "live"');
    }
    for (const field of ["currency", "status", "domain"] as const) {
      if (body[field] !== undefined) Object.assign(tx, { [field]: String(body[field]) });
    }
    return ok("Mutated", transactionData(tx));
  },
  /** Re-sends the last `event` (charge.success) of a reference, same bytes and signature, `times` times. */
  replay: async (ctx, body) => {
    const event = String(body.event ?? "charge.success");
    const times = parseSubunits(body.times ?? 1) ?? 0;
    if (times < 1 || times > 200) throw bad("times must be between 1 and 200");
    const last = ctx.webhooks.last(String(body.reference), event);
    if (!last) throw new PaystackError(404, `No ${event} has been sent for ${body.reference}`);
    const deliveries: Attempt[] = [];
    if (body.concurrent === true) {
      deliveries.push(...await Promise.all(Array.from({ length: times }, () => ctx.webhooks.dispatch(last))));
    } else {
      for (let i = 0; i < times; i++) deliveries.push(await ctx.webhooks.dispatch(last));
    }
    return ok("Replayed", { event, reference: last.reference, deliveries });
  },
  /** A hand-made signed event {event, data}: events Paystack may send that no transaction here produces. */
  send: async (ctx, body) => {
    if (typeof body.event !== "string" || !body.event) throw bad("event is required");
    const d = (body.data ?? {}) as Record<string, Record<string, unknown> | undefined>;
    const reference = String(d.reference ?? d.transaction_reference ?? d.transaction?.reference ?? "") || null;
    return ok("Sent", { event: body.event, reference, deliveries: [await ctx.send(body.event, reference, d)] });
  },
  /** action create (a chargeback on a paid transaction) or resolve (with a resolution). */
  dispute: async (ctx, body) => {
    const tx = mustTx(ctx, body.reference);
    if (body.action !== "create" && body.action !== "resolve") throw bad('action must be "create" or "resolve"');
    const resolution = body.action === "resolve" ? String(body.resolution) : undefined;
    if (resolution !== undefined && !RESOLUTIONS.includes(resolution)) {
      throw bad(`resolution must be one of ${RESOLUTIONS.join(", ")}`);
    }
    const dispute = ctx.store.dispute(tx, body.action, resolution);
    return ok(`charge.dispute.${body.action} sent`, {
      dispute,
      deliveries: [await ctx.dispute(tx, dispute, body.action)],
    });
  },
  /** webhook_url, retry_ms (delays before retries), down (true: the API port refuses connections). */
  config: async (ctx, body) => {
    if (body.webhook_url !== undefined) {
      if (!URL.canParse(String(body.webhook_url))) throw bad("webhook_url must be an absolute URL");
      ctx.config.webhookUrl = String(body.webhook_url);
    }
    if (body.retry_ms !== undefined) {
      const delays = Array.isArray(body.retry_ms) ? body.retry_ms.map(parseSubunits) : [null];
      if (delays.includes(null)) throw bad("retry_ms must be an array of non-negative integers");
      ctx.config.retryMs = delays as number[];
    }
    if (body.down !== undefined) {
      if (typeof body.down !== "boolean") throw bad("down must be a boolean");
      await ctx.setDown(body.down);
    }
    return ok("Config updated", configView(ctx));
  },
};
