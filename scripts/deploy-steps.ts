// The steps of a deploy to hosted Supabase, in order: the numbered headings of docs/deploy.md (CLI path and
// dashboard path) and the steps `npm run deploy:rehearse` plays, one for one. Plain data, so the test that
// holds the two together (supabase/tests/integration/deploy-doc.test.ts) can import it.
export const DEPLOY_STEPS = [
  "create project",
  "link",
  "db push",
  "secrets set",
  "functions deploy",
  "vault secrets",
  "auth settings",
  "paystack webhook URL",
  "dashboard hosting",
  "litellm settings",
  "deploy:check",
  "smoke",
] as const;

export type DeployStep = typeof DEPLOY_STEPS[number];

/** The secrets template (`supabase secrets set --env-file`), relative to the repository root. */
export const SECRETS_TEMPLATE = ".env.deploy.example";

/** The variable names a .env-style text sets (NAME=..., comments and blank lines ignored). */
export function envNamesIn(text: string): string[] {
  return [...text.matchAll(/^([A-Za-z_][A-Za-z0-9_]*)=/gm)].map((m) => m[1]);
}
