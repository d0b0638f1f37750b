// Serves the dashboard's static build (web/dist) for the local stack, plus /config.json built from this
// process's env (the stack env), so one build works for any deployment. Hosted deploys put web/dist on any
// static host with a config.json next to index.html (docs/deploy.md, step 9); Supabase functions do not
// serve HTML. STACK_WEB_DIST serves another build folder; a config.json in it is served as it is, as a
// static host would (the deploy rehearsal uploads its build that way).
import { ROOT } from "./local-env.ts";

const port = Number(Deno.env.get("STACK_WEB_PORT") ?? 54323);
const dist = Deno.env.get("STACK_WEB_DIST") ?? `${ROOT}/web/dist`;
const types: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript",
  css: "text/css",
  svg: "image/svg+xml",
  json: "application/json",
  png: "image/png",
  ico: "image/x-icon",
};

// Public values only: the publishable key (legacy projects: the anon key) is meant for browsers (RLS
// protects the rows).
// CAPTCHA_PROVIDER / CAPTCHA_SITE_KEY (optional, public): the dashboard shows that provider's widget.
const captcha = Deno.env.get("CAPTCHA_PROVIDER")
  ? { CAPTCHA_PROVIDER: Deno.env.get("CAPTCHA_PROVIDER"), CAPTCHA_SITE_KEY: Deno.env.get("CAPTCHA_SITE_KEY") ?? "" }
  : {};
const config = JSON.stringify({
  SUPABASE_URL: Deno.env.get("SUPABASE_URL") ?? "",
  SUPABASE_PUBLISHABLE_KEY: Deno.env.get("SUPABASE_PUBLISHABLE_KEY") ?? Deno.env.get("SUPABASE_ANON_KEY") ?? "",
  LITELLM_PUBLIC_URL: Deno.env.get("LITELLM_PUBLIC_URL") ?? "",
  ...captcha,
});
const uploadedConfig = (() => {
  try {
    return Deno.statSync(`${dist}/config.json`).isFile;
  } catch {
    return false;
  }
})();
const security = { "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" };

Deno.serve(
  { port, hostname: "127.0.0.1", onListen: () => console.log(`dashboard on http://127.0.0.1:${port}`) },
  async (req) => {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url).pathname);
    } catch {
      return new Response("bad path", { status: 400 });
    }
    if (path === "/config.json" && !uploadedConfig) {
      return new Response(config, {
        headers: { "content-type": "application/json", "cache-control": "no-cache", ...security },
      });
    }
    const file = path.endsWith("/") || !path.includes(".") ? "/index.html" : path;
    if (file.includes("..")) return new Response("bad path", { status: 400 });
    try {
      const body = await Deno.readFile(`${dist}${file}`);
      const ext = file.split(".").pop() ?? "";
      const cache = file.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache";
      return new Response(body, {
        headers: { "content-type": types[ext] ?? "application/octet-stream", "cache-control": cache, ...security },
      });
    } catch {
      return new Response(`dashboard not built: run npm run build:web (${file})`, { status: 404 });
    }
  },
);
