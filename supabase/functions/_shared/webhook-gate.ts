// The door of paystack-webhook, before anything is parsed or applied: a body larger than
// PAYSTACK_WEBHOOK_MAX_BYTES is refused (413) and nothing is stored; a source IP off the optional allow-list
// (403) or a bad or missing signature (401) is recorded as hash, size and reason only
// (private.record_rejected_post, capped in SQL). A public URL gets floods; what they leave must stay small.
import { config } from "./config.ts";
import { db } from "./db.ts";
import { clientIp, json, readBodyLimited } from "./http.ts";
import { log } from "./log.ts";
import { sha256Hex } from "./hash.ts";
import { verifySignature } from "./paystack.ts";

export interface AdmittedPost {
  raw: Uint8Array<ArrayBuffer>;
  bodyHash: string;
  sourceIp: string | null;
}

async function reject(
  status: number,
  error: string,
  raw: Uint8Array<ArrayBuffer>,
  bodyHash: string,
  reason: string,
): Promise<Response> {
  // The answer does not depend on the database: a refused post is refused even if recording it fails.
  await db()`select private.record_rejected_post(${bodyHash}, ${raw.byteLength}, ${reason})`
    .catch((e) => log.warn("could not record a rejected webhook post", { reason, error: (e as Error).message }));
  return json({ error, message: reason }, status);
}

/** The post if it may go on (a signed body of an acceptable size from an allowed source), else the answer. */
export async function admitPaystackPost(req: Request): Promise<AdmittedPost | Response> {
  const c = config();
  const raw = await readBodyLimited(req, c.PAYSTACK_WEBHOOK_MAX_BYTES); // 413 before anything is stored
  const bodyHash = await sha256Hex(raw);
  const sourceIp = clientIp(req);
  const allowed = c.PAYSTACK_WEBHOOK_ALLOWED_IPS;
  if (allowed && !(sourceIp && allowed.includes(sourceIp))) {
    return await reject(403, "forbidden_source", raw, bodyHash, "source ip not allowed");
  }
  const signature = await verifySignature(raw, req.headers.get("x-paystack-signature"));
  if (signature !== "ok") return await reject(401, "invalid_signature", raw, bodyHash, `signature ${signature}`);
  return { raw, bodyHash, sourceIp };
}
