// Runtime configuration, fetched at start so one build serves any deployment. The local stack serves
// /config.json from its env (stack/web-server.ts); on a static host, write config.json next to index.html:
//   {"SUPABASE_URL": "https://<ref>.supabase.co", "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_...", "LITELLM_PUBLIC_URL": "https://llm.example.com"}
// A project still on legacy API keys may give "SUPABASE_ANON_KEY" instead of SUPABASE_PUBLISHABLE_KEY.
// Optional: "CAPTCHA_PROVIDER": "hcaptcha" | "turnstile" and "CAPTCHA_SITE_KEY" when the project has CAPTCHA
// protection on (README, "Abuse controls"); both or neither.
import { CAPTCHA_PROVIDERS, type CaptchaProvider } from "./captcha.ts";

export interface Config {
  SUPABASE_URL: string;
  SUPABASE_PUBLISHABLE_KEY: string;
  LITELLM_PUBLIC_URL: string;
  captcha: { provider: CaptchaProvider; siteKey: string } | null;
}

export async function loadConfig(): Promise<Config> {
  // Relative to the page, so the build works under any path. index.html preloads it in parallel with the JS.
  const r = await fetch("config.json").catch(() => null);
  if (!r || !r.ok) {
    throw new Error(
      "config.json could not be loaded: the dashboard needs it next to index.html (see README, Dashboard).",
    );
  }
  const c = (await r.json().catch(() => ({}))) as Record<string, string | undefined>;
  const given: Record<string, string | undefined> = {
    ...c,
    SUPABASE_PUBLISHABLE_KEY: c.SUPABASE_PUBLISHABLE_KEY || c.SUPABASE_ANON_KEY,
  };
  const missing = (["SUPABASE_URL", "SUPABASE_PUBLISHABLE_KEY", "LITELLM_PUBLIC_URL"] as const).filter((k) =>
    typeof given[k] !== "string" || !given[k]
  );
  if (missing.length) throw new Error(`config.json is missing ${missing.join(", ")} (see README, Dashboard).`);
  const provider = c.CAPTCHA_PROVIDER as CaptchaProvider | undefined;
  if ((provider || c.CAPTCHA_SITE_KEY) && !(provider && CAPTCHA_PROVIDERS.includes(provider) && c.CAPTCHA_SITE_KEY)) {
    throw new Error(
      `config.json: CAPTCHA_PROVIDER must be ${
        CAPTCHA_PROVIDERS.join(" or ")
      } and come with CAPTCHA_SITE_KEY (see README, Abuse controls).`,
    );
  }
  return {
    SUPABASE_URL: given.SUPABASE_URL!,
    SUPABASE_PUBLISHABLE_KEY: given.SUPABASE_PUBLISHABLE_KEY!,
    LITELLM_PUBLIC_URL: given.LITELLM_PUBLIC_URL!.replace(/\/+$/, ""),
    captcha: provider ? { provider, siteKey: c.CAPTCHA_SITE_KEY! } : null,
  };
}
