// A fleet of up to millions of users with active keys, seeded in bulk for bench:reconcile (not measured).
//
// fleet.ts seeds through the real sign-up trigger, about 1 ms of Postgres per user: fine for 100,000, most of
// an hour for 1,000,000. Here each batch of 100,000 is four INSERT ... SELECT FROM generate_series statements
// (auth.users, profiles, the sign-up grant in credit_ledger, the active key in api_keys) with triggers off for
// the batch's transaction (session_replication_role = replica: the rows are what handle_new_user and
// complete_provisioning would have left, so no trigger has anything to add). Only a superuser may set that:
// these transactions connect as the local cluster's bootstrap superuser (stack/pg.ts, trust auth on
// loopback), a shortcut only a local benchmark can take; everything measured runs as the product does. Key i is `<prefix><i>` (9
// digits), its token sha256 hex computed by Postgres; the LiteLLM emulator makes the same keys with
// POST /admin/bulk-seed (its README), with spend bulkSpend(i) and max_budget = the grant. Nothing but
// (prefix, from, count) crosses HTTP. VACUUM ANALYZE afterwards stands in for autovacuum.
import postgres from "postgres";
import { BenchError, env, int, litellmAdmin, runId, secs, sql } from "./common.ts";

const BATCH = 100_000;
const SUPERUSER = "supabase_admin"; // stack/pg.ts BOOTSTRAP_ROLE

export interface BulkFleet {
  count: number;
  keyOf: (i: number) => string; // raw key of fleet member i (0-based)
  active: number; // active keys in the database: the fleet and any the stack had before
  chunks: number;
  perInvocation: number;
}

export async function seedBulkFleet(count: number): Promise<BulkFleet> {
  const db = sql();
  const [{ grant }] = await db<{ grant: string }[]>`select private.setting_numeric('signup_grant_usd')::text as grant`;
  const tag = runId();
  const prefix = `sk-bulk${tag}x`.replace(/[^A-Za-z0-9_-]/g, "");
  const keyOf = (i: number) => `${prefix}${String(i).padStart(9, "0")}`;
  const url = new URL(env("SUPABASE_DB_URL"));
  url.username = SUPERUSER;
  url.password = "";
  const admin = postgres(url.toString(), { max: 1, onnotice: () => {} });
  const t0 = performance.now();
  let tEmu = 0;
  let pendingEmu: Promise<void> = Promise.resolve();
  for (let from = 0; from < count; from += BATCH) {
    const n = Math.min(BATCH, count - from);
    const to = from + n - 1;
    await admin.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      // md5(tag || i) as the user id: every statement below derives the same ids from i.
      await tx`
        insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                                raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
        select '00000000-0000-0000-0000-000000000000', md5(${tag}::text || g)::uuid, 'authenticated', 'authenticated',
               'bench-bulk-' || ${tag}::text || '-' || g || '@example.com', '', now(),
               '{"provider":"email","providers":["email"]}'::jsonb, '{}'::jsonb, now(), now()
          from generate_series(${from}::int, ${to}::int) g`;
      await tx`
        insert into public.profiles (id, email)
        select md5(${tag}::text || g)::uuid, 'bench-bulk-' || ${tag}::text || '-' || g || '@example.com'
          from generate_series(${from}::int, ${to}::int) g`;
      await tx`
        insert into public.credit_ledger (user_id, kind, amount, idempotency_key, reason)
        select md5(${tag}::text || g)::uuid, 'signup_grant', ${grant}::numeric, 'signup:' || md5(${tag}::text || g)::uuid,
               'sign-up credit'
          from generate_series(${from}::int, ${to}::int) g`;
      await tx`
        insert into public.api_keys (user_id, key_alias, key_value, key_token, status, activated_at, litellm_max_budget,
                                     observed_max_budget, sync_status, last_sync_at)
        select u, 'lc-' || u, k, encode(sha256(convert_to(k, 'UTF8')), 'hex'), 'active', now(), ${grant}::numeric,
               ${grant}::numeric, 'synced', now()
          from generate_series(${from}::int, ${to}::int) g,
               lateral (select md5(${tag}::text || g)::uuid as u, ${prefix}::text || lpad(g::text, 9, '0') as k) x
         order by g`;
    });
    // The emulator's batch overlaps the next database batch.
    await pendingEmu;
    pendingEmu = (async () => {
      const te = performance.now();
      const r = await litellmAdmin("/admin/bulk-seed", { prefix, from, count: n, max_budget: Number(grant) });
      tEmu += performance.now() - te;
      if (r.keys_created !== n) throw new BenchError(`emulator bulk-seed: ${JSON.stringify(r)}`);
    })();
    if ((to + 1) % 200_000 === 0 || to + 1 === count) {
      console.log(`  loaded ${int(to + 1)} users/keys (${secs(performance.now() - t0)})`);
    }
  }
  await pendingEmu;
  await admin.end({ timeout: 5 });
  const tv = performance.now();
  for (const t of ["auth.users", "public.profiles", "public.credit_ledger", "public.api_keys"]) {
    await db.unsafe(`vacuum analyze ${t}`);
  }
  const [c] = await db<{ active: number; chunks: number; per: number }[]>`
    select (select count(*) from public.api_keys where status = 'active')::int as active,
           (select coalesce(max(reconcile_chunk) + 1, 0) from public.api_keys)::int as chunks,
           private.setting_numeric('reconcile_chunks_per_invocation')::int as per`;
  const emu = await litellmAdmin("/admin/stats");
  console.log(
    `setup: ${int(count)} users + keys in bulk in ${secs(performance.now() - t0)} (emulator ${secs(tEmu)}, ` +
      `vacuum analyze ${secs(performance.now() - tv)}); ${int(c.active)} active keys in ${c.chunks} chunks ` +
      `(${c.per} per invocation); emulator holds ${int(emu.keys)} keys`,
  );
  if (c.active < count) throw new BenchError(`only ${c.active} active keys after seeding ${count}`);
  return { count, keyOf, active: c.active, chunks: c.chunks, perInvocation: c.per };
}
