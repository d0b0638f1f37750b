// The demo user `npm start` creates through the Auth stand-in, so the dashboard has someone to sign in as.
import { say } from "./log.ts";

export const DEMO = { email: "demo@example.com", password: "demo-password-1" };

export async function createDemoUser(env: Record<string, string>): Promise<string> {
  try {
    const r = await fetch(`${env.SUPABASE_URL}/auth/v1/signup`, {
      method: "POST",
      headers: { apikey: env.SUPABASE_ANON_KEY, "Content-Type": "application/json" },
      body: JSON.stringify(DEMO),
    });
    await r.body?.cancel();
    if (!r.ok) say(`demo user not created (auth answered ${r.status})`);
  } catch {
    say("demo user not created (auth not running)");
  }
  return `${DEMO.email} / ${DEMO.password}`;
}
