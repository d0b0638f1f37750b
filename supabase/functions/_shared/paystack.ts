// The one Paystack client (initialize, verify, charge a saved card, list refunds, the health ping) and the webhook
// signature check.
// The product never starts a refund; it reads the ones made on Paystack (README "Refunds and disputes").
import { z } from "zod";
import { config } from "./config.ts";
import { hmacSha512Hex } from "./hash.ts";

export class PaystackError extends Error {
  constructor(message: string, public readonly status: number | null, public readonly transient: boolean) {
    super(message);
    this.name = "PaystackError";
  }
}

const envelope = z.object({
  status: z.boolean(),
  message: z.string().default(""),
  data: z.unknown().optional(),
  meta: z.unknown().optional(),
});

const int = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]);
export const transactionSchema = z.object({
  id: z.number().int(),
  domain: z.string().nullish(),
  status: z.string(),
  reference: z.string(),
  amount: int,
  requested_amount: int.nullish(),
  currency: z.string(),
  channel: z.string().nullish(), // what the customer paid with: card, bank, ussd, mobile_money, bank_transfer, qr, ...
  paid_at: z.string().nullish(),
  paidAt: z.string().nullish(),
  gateway_response: z.string().nullish(),
  // The card (or other instrument) used; reusable card authorizations are saved (private.save_payment_method).
  authorization: z.record(z.string(), z.unknown()).nullish(),
}).passthrough();
export type Transaction = z.infer<typeof transactionSchema>;

const initializeData = z.object({
  authorization_url: z.string().url(),
  access_code: z.string(),
  reference: z.string(),
});

export interface InitializeRequest {
  email: string;
  amount: number; // integer subunits, the price locked at checkout
  currency: string; // always sent: omitted means the account's default currency
  reference: string;
  channels?: string[]; // the currency's channels; omitted: what the merchant's dashboard enables
  callback_url?: string;
  metadata?: Record<string, unknown>;
}

async function call(method: "GET" | "POST", path: string, body?: unknown) {
  const c = config();
  let res: Response;
  try {
    res = await fetch(`${c.PAYSTACK_BASE_URL.replace(/\/$/, "")}${path}`, {
      method,
      headers: { Authorization: `Bearer ${c.PAYSTACK_SECRET_KEY}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(c.PAYSTACK_TIMEOUT_MS),
    });
  } catch (e) {
    throw new PaystackError(`Paystack unreachable: ${(e as Error).message}`, null, true);
  }
  const text = await res.text();
  let parsed: z.infer<typeof envelope>;
  try {
    parsed = envelope.parse(JSON.parse(text));
  } catch {
    throw new PaystackError(
      `Paystack ${path.split("/").slice(0, 3).join("/")} answered ${res.status} without its JSON envelope`,
      res.status,
      res.status >= 500,
    );
  }
  return { status: res.status, body: parsed };
}

export async function initializeTransaction(req: InitializeRequest) {
  const { status, body } = await call("POST", "/transaction/initialize", req);
  if (status >= 500) throw new PaystackError(`Paystack initialize failed (${status}): ${body.message}`, status, true);
  if (!body.status) throw new PaystackError(`Paystack refused the transaction: ${body.message}`, status, false);
  return initializeData.parse(body.data);
}

/**
 * Verify statuses that are not an answer yet (https://paystack.com/docs/api/transaction/#verify): mobile
 * money and transfers are paid offline, so a transaction can sit in one of these before it succeeds or fails.
 */
export const PENDING_STATUSES: readonly string[] = ["pending", "ongoing", "processing", "queued"];

/** GET /transaction/verify/:reference. null when Paystack does not know the reference. */
export async function verifyTransaction(reference: string): Promise<Transaction | null> {
  const { status, body } = await call("GET", `/transaction/verify/${encodeURIComponent(reference)}`);
  if (status >= 500 || status === 429) {
    throw new PaystackError(`Paystack verify failed (${status}): ${body.message}`, status, true);
  }
  if (status === 401) throw new PaystackError("Paystack rejected our secret key (401)", status, true);
  if (!body.status) {
    if (status === 404 || status === 400 || /not found/i.test(body.message)) return null;
    throw new PaystackError(`Paystack verify: ${body.message}`, status, true);
  }
  return transactionSchema.parse(body.data);
}

export interface ChargeAuthorizationRequest {
  authorization_code: string; // never logged (_shared/log.ts masks AUTH_ codes)
  email: string; // the customer's email the authorization belongs to
  amount: number; // integer subunits, the price locked in the attempt's checkout row
  currency: string;
  reference: string; // the attempt's own reference: Paystack refuses a second charge with it
  metadata?: Record<string, unknown>;
}

/** What a charge attempt answered: Paystack's decision, or a refusal before any charge was made. */
export type ChargeOutcome =
  | { kind: "charged"; transaction: Transaction } // data.status: success, failed, or not final yet (pending, ...)
  | { kind: "refused"; message: string }; // 400: invalid or non-reusable authorization, duplicate reference, ...

/**
 * POST /transaction/charge_authorization (https://paystack.com/docs/api/transaction/#charge-authorization):
 * charges a reusable authorization from an earlier card payment. 200 {status:true, message:"Charge attempted",
 * data} in the transaction shape verify returns; a refusal is {status:false, message} with a 4xx. Network
 * errors, 5xx and 429 throw a transient PaystackError: the charge may or may not have been made, so the
 * caller settles it by verifying the reference, never by charging again.
 */
export async function chargeAuthorization(req: ChargeAuthorizationRequest): Promise<ChargeOutcome> {
  const { status, body } = await call("POST", "/transaction/charge_authorization", req);
  if (status >= 500 || status === 429) {
    throw new PaystackError(`Paystack charge_authorization failed (${status}): ${body.message}`, status, true);
  }
  if (status === 401) throw new PaystackError("Paystack rejected our secret key (401)", status, true);
  if (!body.status) return { kind: "refused", message: body.message || `http ${status}` };
  return { kind: "charged", transaction: transactionSchema.parse(body.data) };
}

// One refund as GET /refund lists it (https://paystack.com/docs/api/refund/#list): `transaction` is the
// refunded transaction's id (an object with an id in some answers), `amount` integer subunits.
const refundEntry = z.object({
  id: z.union([z.number().int(), z.string()]),
  transaction: z.union([int, z.object({ id: int }).passthrough().transform((t) => t.id)]),
  amount: int,
  currency: z.string(),
  status: z.string(),
}).passthrough();
export type RefundEntry = z.infer<typeof refundEntry>;
const listMeta = z.object({ page: int.optional(), pageCount: int.optional() }).passthrough();
const REFUND_PAGE_SIZE = 100;
const REFUND_MAX_PAGES = 20;

/**
 * Every refund of one transaction, all pages (GET /refund?transaction=<id>&perPage=&page=). This list,
 * not the refund events, is what refunds are applied from (private.apply_refunds). Failures are transient
 * (the webhook answers 503 and Paystack retries).
 */
export async function listRefunds(transactionId: string | number, pageSize = REFUND_PAGE_SIZE): Promise<RefundEntry[]> {
  const out: RefundEntry[] = [];
  for (let page = 1; page <= REFUND_MAX_PAGES; page++) {
    const { status, body } = await call(
      "GET",
      `/refund?transaction=${encodeURIComponent(String(transactionId))}&perPage=${pageSize}&page=${page}`,
    );
    if (!body.status) {
      if (status === 404) return out; // nothing to list
      throw new PaystackError(`Paystack list refunds failed (${status}): ${body.message}`, status, true);
    }
    const data = z.array(refundEntry).parse(body.data ?? []);
    out.push(...data);
    const meta = listMeta.safeParse(body.meta);
    if (data.length === 0 || !meta.success || (meta.data.pageCount ?? 1) <= page) return out;
  }
  throw new PaystackError(
    `Paystack list refunds: more than ${REFUND_MAX_PAGES} pages for one transaction`,
    null,
    false,
  );
}

/**
 * Health check: Paystack has no ping route, so this is the cheapest authenticated read there is, a verify
 * of a reference that cannot exist. Paystack answers "not found" (400/404) when our secret key is
 * accepted and 401 when it is not; nothing is created or changed.
 */
export async function pingPaystack(): Promise<
  { ok: boolean; status: number | null; latency_ms: number; error?: string }
> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  try {
    const { status } = await call("GET", `/transaction/verify/health-check-${crypto.randomUUID()}`);
    if (status === 401 || status === 403) {
      return { ok: false, status, latency_ms: latency(), error: "Paystack rejected our secret key" };
    }
    if (status >= 500 || status === 429) return { ok: false, status, latency_ms: latency(), error: `http ${status}` };
    return { ok: true, status, latency_ms: latency() };
  } catch (e) {
    const status = e instanceof PaystackError ? e.status : null;
    return { ok: false, status, latency_ms: latency(), error: status === null ? "unreachable" : `http ${status}` };
  }
}

/**
 * x-paystack-signature: lowercase hex HMAC-SHA512 of the exact body bytes, keyed with the secret key.
 * Checked over the raw bytes, before anything is parsed, in constant time.
 */
export async function verifySignature(
  rawBody: Uint8Array<ArrayBuffer>,
  header: string | null,
  secret = config().PAYSTACK_SECRET_KEY,
): Promise<"ok" | "missing" | "malformed" | "mismatch"> {
  if (!header) return "missing";
  const sig = header.trim().toLowerCase();
  if (!/^[0-9a-f]{128}$/.test(sig)) return "malformed";
  const expected = await hmacSha512Hex(secret, rawBody);
  let diff = 0;
  for (let i = 0; i < 128; i++) diff |= expected.charCodeAt(i) ^ sig.charCodeAt(i);
  return diff === 0 ? "ok" : "mismatch";
}
