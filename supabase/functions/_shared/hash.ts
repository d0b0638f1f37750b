// Hex digests. LiteLLM names a key by the sha256 of its value (the token its reads return), a webhook
// body is recorded by its sha256 only, and Paystack signs a webhook body with HMAC-SHA512 of the secret key.

export function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** sha256 of text (UTF-8) or of exact bytes, as lowercase hex. */
export async function sha256Hex(data: string | Uint8Array<ArrayBuffer>): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", typeof data === "string" ? new TextEncoder().encode(data) : data));
}

/** HMAC-SHA512 of text (UTF-8) or of exact bytes under `secret`, as lowercase hex (Paystack's x-paystack-signature). */
export async function hmacSha512Hex(secret: string, data: string | Uint8Array<ArrayBuffer>): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-512" }, false, [
    "sign",
  ]);
  return hex(await crypto.subtle.sign("HMAC", key, typeof data === "string" ? enc.encode(data) : data));
}
