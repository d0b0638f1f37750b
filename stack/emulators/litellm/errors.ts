// Error shapes of the LiteLLM proxy, reproduced byte-for-byte where callers may parse them.
//
// LiteLLM answers almost every failure with a ProxyException:
//   {"error": {"message": str, "type": str, "param": str|null, "code": "<status>"}}
// Two quirks are kept on purpose because client code sees them in production:
// - `param` is usually the *string* "None" (Python's str(None)), only some paths send null;
// - HTTPExceptions raised with a dict detail are re-wrapped with str(dict), so the message
//   reads like "{'error': 'No keys found'}" (Python repr, single quotes).
// Request-validation failures are FastAPI's own shape instead: 422 {"detail": [...]}.

export type Json = null | boolean | number | string | Json[] | {
  [k: string]: Json;
};

/** An HTTP failure carrying its exact body; thrown by handlers, rendered by the server. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Json,
    readonly headers: Record<string, string> = {},
  ) {
    super(
      typeof body === "object" && body && "error" in body
        ? JSON.stringify(body)
        : `HTTP ${status}`,
    );
  }
}

/** LiteLLM's ProxyException envelope. */
export function proxyError(
  status: number,
  message: string,
  type: string,
  param: string | null = "None",
  headers: Record<string, string> = {},
): ApiError {
  return new ApiError(status, {
    error: { message, type, param, code: String(status) },
  }, headers);
}

/** HTTPException(detail={"error": msg}) after handle_exception_on_proxy: str(dict) message. */
export function detailError(
  status: number,
  msg: string,
  type = "internal_server_error",
): ApiError {
  return proxyError(status, pyRepr({ error: msg }), type, "None");
}

/** FastAPI 422 body. */
export function validationError(detail: Json[]): ApiError {
  return new ApiError(422, { detail });
}

export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function errorResponse(err: ApiError): Response {
  return jsonResponse(err.status, err.body, err.headers);
}

// ---------------------------------------------------------------------------------------------
// Python formatting helpers: messages embed Python's str()/repr() of values.

/** Python repr() of a str: single quotes unless the text has ' and no ". */
export function pyStr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = "";
  for (const ch of s) {
    if (ch === "\\") out += "\\\\";
    else if (ch === quote) out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else out += ch;
  }
  return quote + out + quote;
}

/** Python str() of a float, e.g. 2 -> "2.0", 0.00001 -> "1e-05" (shortest round-trip digits). */
export function pyFloat(n: number): string {
  if (Number.isNaN(n)) return "nan";
  if (!Number.isFinite(n)) return n > 0 ? "inf" : "-inf";
  if (n === 0) return Object.is(n, -0) ? "-0.0" : "0.0";
  const abs = Math.abs(n);
  if (abs >= 1e16 || abs < 1e-4) {
    // JS "1.5e-7" -> Python "1.5e-07"; JS "1e+21" -> Python "1e+21"
    const [mant, exp] = n.toExponential().split("e");
    const sign = exp.startsWith("-") ? "-" : "+";
    const digits = exp.replace(/^[+-]/, "").padStart(2, "0");
    return `${mant}e${sign}${digits}`;
  }
  const s = String(n);
  return Number.isInteger(n) ? `${s}.0` : s;
}

/** Python repr() of JSON-ish values (dicts, lists, strings, numbers, None, bools). */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number") {
    return Number.isInteger(v) ? String(v) : pyFloat(v);
  }
  if (typeof v === "string") return pyStr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  if (typeof v === "object") {
    return `{${
      Object.entries(v as Record<string, unknown>).map(([k, x]) =>
        `${pyStr(k)}: ${pyRepr(x)}`
      ).join(", ")
    }}`;
  }
  return String(v);
}

/** LiteLLM's masking of a presented key in error messages: first 4 + **** + last 4. */
export function maskKey(key: string): string {
  return key.length > 8 ? `${key.slice(0, 4)}****${key.slice(-4)}` : "****";
}
