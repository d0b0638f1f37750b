// Serves the dashboard's static build (web/dist) for the local stack. Hosted deploys put web/dist on any
// static host; Supabase functions do not serve HTML.
import { ROOT } from "./local-env.ts";

const port = Number(Deno.env.get("STACK_WEB_PORT") ?? 54323);
const dist = `${ROOT}/web/dist`;
const types: Record<string, string> = { html: "text/html; charset=utf-8", js: "text/javascript", css: "text/css", svg: "image/svg+xml", json: "application/json", png: "image/png", ico: "image/x-icon" };

Deno.serve({ port, hostname: "127.0.0.1", onListen: () => console.log(`dashboard on http://127.0.0.1:${port}`) }, async (req) => {
  const path = decodeURIComponent(new URL(req.url).pathname);
  const file = path.endsWith("/") || !path.includes(".") ? "/index.html" : path;
  if (file.includes("..")) return new Response("bad path", { status: 400 });
  try {
    const body = await Deno.readFile(`${dist}${file}`);
    const ext = file.split(".").pop() ?? "";
    const cache = file.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache";
    return new Response(body, { headers: { "content-type": types[ext] ?? "application/octet-stream", "cache-control": cache } });
  } catch {
    return new Response(`dashboard not built: run npm run build:web (${file})`, { status: 404 });
  }
});
