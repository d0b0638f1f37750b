// Runtime configuration, fetched at start so one build serves any deployment. The local stack serves
// /config.json from its env (stack/web-server.ts); on a static host, write config.json next to index.html:
//   {"SUPABASE_URL": "https://<ref>.supabase.co", "SUPABASE_ANON_KEY": "<anon key>", "LITELLM_PUBLIC_URL": "https://llm.example.com"}

export interface Config {
  SUPABASE_URL: string;
  SUPABASE_ANON_KEY: string;
  LITELLM_PUBLIC_URL: string;
}

export async function loadConfig(): Promise<Config> {
  // Relative to the page, so the build works under any path. index.html preloads it in parallel with the JS.
  const r = await fetch("config.json").catch(() => null);
  if (!r || !r.ok) throw new Error("config.json could not be loaded: the dashboard needs it next to index.html (see README, Dashboard).");
  const c = (await r.json().catch(() => ({}))) as Partial<Config>;
  const missing = (["SUPABASE_URL", "SUPABASE_ANON_KEY", "LITELLM_PUBLIC_URL"] as const).filter((k) => typeof c[k] !== "string" || !c[k]);
  if (missing.length) throw new Error(`config.json is missing ${missing.join(", ")} (see README, Dashboard).`);
  return { ...(c as Config), LITELLM_PUBLIC_URL: c.LITELLM_PUBLIC_URL!.replace(/\/+$/, "") };
}
