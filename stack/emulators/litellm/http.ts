// HTTP helpers shared by both ports: JSON answers, LiteLLM's error envelope, body parsing.
//
// LiteLLM answers failures as {"error": {"message", "type", "param", "code": "<status>"}}
// (ProxyException); request-validation failures are FastAPI's 422 {"detail": [...]}.
import type { z } from "zod";

export type Handler = (req: Request, url: URL) => Promise<Response>;

/** A failure with its exact body, thrown by handlers and rendered by the server. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly body: unknown, readonly headers: Record<string, string> = {}) {
    super(`HTTP ${status}`);
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

/** LiteLLM's ProxyException envelope (`param` is often the string "None": Python's str(None)). */
export function proxyError(
  status: number,
  message: string,
  type: string,
  param: string | null = "None",
  headers: Record<string, string> = {},
) {
  return new ApiError(status, { error: { message, type, param, code: String(status) } }, headers);
}

export const render = (e: ApiError) => json(e.status, e.body, e.headers);

/** The JSON body, or undefined when empty; malformed JSON is FastAPI's 422 json_invalid. */
export async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(422, { detail: [{ type: "json_invalid", loc: ["body", 0], msg: "JSON decode error" }] });
  }
}

/** Validates a body or query like FastAPI + pydantic would: 422 with one detail item per problem. */
export function parse<T extends z.ZodType>(schema: T, value: unknown, at: "body" | "query" = "body"): z.infer<T> {
  const r = schema.safeParse(value ?? null);
  if (r.success) return r.data;
  const detail = r.error.issues.map((i) => ({ type: i.code, loc: [at, ...i.path], msg: i.message }));
  throw new ApiError(422, { detail });
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()));
  });
