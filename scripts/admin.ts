// `npm run admin -- <command>`: the operator's command line, for the local stack or a hosted project.
//
// Database: --db-url, else SUPABASE_DB_URL, else the local stack's .local/stack.env (npm start).
// Functions (anything that talks to LiteLLM: push-budget, reconcile, rotate, requeue's provisioning run):
// --url or SUPABASE_URL, with a secret API key: SUPABASE_SECRET_KEY, else the default of SUPABASE_SECRET_KEYS,
// else the legacy SUPABASE_SERVICE_ROLE_KEY (from --env-file, the environment, or the stack env). The CLI
// itself never calls LiteLLM: it goes through the same functions and SQL as production.
// Credit changes are ledger rows (kind 'adjustment', with the reason and who made them), never edits.
// Users are given by id or email. Run `npm run admin -- help`.
import postgres from "postgres";
import { compareMoney, formatMoney } from "../supabase/functions/_shared/money.ts";
import { exportLedger, exportOptions } from "./admin-export.ts";
import { promo } from "./admin-promo.ts";

const HELP = `usage: npm run admin -- <command> [args] [options]

reading
  failures                       keys whose budget sync failed, failed provisioning, flagged keys
  drift                          active keys whose LiteLLM max_budget differs from the ledger target
  dead-jobs                      provisioning jobs that gave up
  rejected [--limit N]           rejected or failed webhook deliveries (newest first, default 50)
  rotations                      key rotations that have not finished
  alerts [--all] [--limit N]     low-balance alerts not delivered yet (--all: every alert)
  repairs [--limit N]            LiteLLM keys repaired by reconcile (max_budget or block state edited on LiteLLM): found, set to
  resets [--all] [--limit N]     LiteLLM spend resets not acknowledged (LiteLLM reported less spend than recorded; --all: every one)
  audit                          every live key: ledger target vs LiteLLM max_budget, recorded vs LiteLLM spend, block state;
                                 totals (credit sold, granted, spend recorded and on LiteLLM, outstanding liability); exit 1 on any mismatch
  user <user>                    one user's balance, keys (masked) and latest ledger rows

changing (each changes only what it says)
  requeue [user]                 re-queue dead provisioning jobs (all, or one user's), then run provisioning
  push-budget <user>             push the ledger target (and block state) of the user's key to LiteLLM now
  reconcile <user|all>           pull spend from LiteLLM now, for one user or every key
  recreate <user|all>            re-create keys deleted on LiteLLM (same key value, alias and budget), then run provisioning
  grant <user> <amount> --reason "..."    add credit: one ledger row (adjustment), then a budget push
  deduct <user> <amount> --reason "..."   remove credit: one ledger row (adjustment), then a budget push
  resets --ack                   acknowledge the open spend resets (health stops reporting them)
  rotate <user>                  new key carrying the remaining credit; the old key is blocked, then deleted once its spend settled

prices and currencies (what checkout charges; a checkout already started keeps its price)
  currencies                     Paystack's currencies: enabled, default, channels, minimum
  currencies enable <CODE> [--default] [--channels card,mobile_money] [--min <amount>]
                                 accept payments in CODE (--channels '': Paystack decides; --min: major units)
  currencies disable <CODE>      stop new checkouts in CODE (not the default)
  prices                         every plan's price in every currency (major units), with the rate it was derived at
  prices set <plan> <CODE> <amount>                 a price in major units, e.g. prices set starter NGN 7500
  prices derive <CODE> --rate <CODE per USD> [--round <step>]
                                 each USD price x rate, rounded up to a multiple of step (major units); rate kept
  merchant-name [set <name>]     the shop's name on receipts

usage by model
  usage-gaps [--limit N]         keys whose spend differs from the sum of their models ('other' on the usage page)

promo credit (spent before paid credit, earliest-expiring first; the unused rest expires)
  promo create <CODE> <amount> [--days N | --expires-on YYYY-MM-DD] [--max-redemptions N] [--note "..."]
                                 a code worth <amount> USD, once per user; expiring N days after redemption or at the
                                 end of that UTC day (neither: never); at most N redemptions in all (default: no limit)
  promo list                     every code, with its redemptions
  promo disable <CODE>           no more redemptions (credit already redeemed stays)

export
  export ledger --from YYYY-MM-DD --to YYYY-MM-DD [--user <user>] [--format csv|jsonl]
                                 every user's ledger statement (README, "Ledger CSV") to stdout, streamed;
                                 totals per entry type and per currency on stderr

<user> is a user id or an email address. <amount> is USD for grant/deduct, e.g. 5 or 2.50.

options
  --db-url <url>         Postgres URL (hosted: the project's connection string; else SUPABASE_DB_URL)
  --url <url>            project URL for the functions (else SUPABASE_URL)
  --env-file <path>      read SUPABASE_* variables from this file first (SUPABASE_URL, SUPABASE_SECRET_KEY)
  --by <name>            who makes a change (recorded in the ledger; default admin-cli:$USER)
  --idempotency-key <k>  for grant/deduct: repeating the command with the same key adds nothing
  --json                 machine-readable output
`;

class UsageError extends Error {}
class AdminError extends Error {}

// ------------------------------------------------------------------ arguments and environment
const VALUE_FLAGS = new Set([
  "db-url",
  "url",
  "env-file",
  "by",
  "reason",
  "limit",
  "idempotency-key",
  "channels",
  "min",
  "rate",
  "round",
  "from",
  "to",
  "user",
  "format",
  "days",
  "expires-on",
  "max-redemptions",
  "note",
]);
const BOOL_FLAGS = new Set(["json", "all", "help", "ack", "default"]);

function parseArgs(argv: string[]) {
  const positional: string[] = [];
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") continue;
    if (a.startsWith("--")) {
      const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      if (BOOL_FLAGS.has(name)) flags[name] = true;
      else if (VALUE_FLAGS.has(name)) {
        const v = inline ?? argv[++i];
        if (v === undefined) throw new UsageError(`--${name} needs a value`);
        flags[name] = v;
      } else throw new UsageError(`unknown option --${name}`);
    } else positional.push(a);
  }
  return { positional, flags };
}

function readEnvFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    throw new UsageError(`cannot read the env file ${path}`);
  }
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trim().startsWith("#")) continue;
    out[m[1]] = m[2].replace(/^(['"])(.*)\1$/, "$2");
  }
  return out;
}

/** The "default" key of a JSON dictionary like SUPABASE_SECRET_KEYS ({"default":"sb_secret_..."}). */
function defaultKey(json: string | undefined): string | undefined {
  try {
    const keys = JSON.parse(json ?? "") as Record<string, string>;
    return keys.default ?? Object.values(keys)[0];
  } catch {
    return undefined;
  }
}

function settings(flags: Record<string, string | boolean>) {
  const root = new URL("..", import.meta.url).pathname;
  let stack: Record<string, string> = {};
  try {
    stack = readEnvFile(`${root}.local/stack.env`);
  } catch { /* no local stack */ }
  const file = typeof flags["env-file"] === "string" ? readEnvFile(flags["env-file"]) : {};
  const get = (name: string) => file[name] ?? Deno.env.get(name) ?? stack[name];
  return {
    dbUrl: (flags["db-url"] as string | undefined) ?? get("SUPABASE_DB_URL"),
    url: (flags["url"] as string | undefined) ?? get("SUPABASE_URL"),
    serviceKey: get("SUPABASE_SECRET_KEY") ?? defaultKey(get("SUPABASE_SECRET_KEYS")) ??
      get("SUPABASE_SERVICE_ROLE_KEY"),
    by: (flags["by"] as string | undefined) ?? Deno.env.get("ADMIN_NAME") ??
      `admin-cli:${Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "unknown"}`,
  };
}

// ------------------------------------------------------------------ output
let asJson = false;

function mask(text: string): string {
  return text.replace(/\bsk-[A-Za-z0-9_-]{4,}/g, (k) => `sk-...${k.slice(-4)}`);
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (v instanceof Date) return v.toISOString().replace(/\.\d{3}Z$/, "Z");
  if (typeof v === "object") return JSON.stringify(v);
  return mask(String(v));
}

function table(rows: Record<string, unknown>[], empty: string) {
  if (rows.length === 0) return console.log(empty);
  const cols = Object.keys(rows[0]);
  const widths = cols.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const fmt = (vals: string[]) =>
    vals.map((v, i) => (v.length > widths[i] ? v.slice(0, widths[i] - 1) + "…" : v.padEnd(widths[i]))).join("  ")
      .trimEnd();
  console.log(fmt(cols));
  console.log(fmt(widths.map((w) => "-".repeat(w))));
  for (const r of rows) console.log(fmt(cols.map((c) => cell(r[c]))));
  console.log(`(${rows.length} row${rows.length === 1 ? "" : "s"})`);
}

function out(data: unknown, human: () => void) {
  if (asJson) console.log(JSON.stringify(data, (_k, v) => (typeof v === "string" ? mask(v) : v), 2));
  else human();
}

// ------------------------------------------------------------------ database and functions
type Sql = postgres.Sql;

function connect(dbUrl: string | undefined): Sql {
  if (!dbUrl) throw new UsageError("no database: give --db-url (or set SUPABASE_DB_URL, or start the local stack)");
  return postgres(dbUrl, {
    max: 2,
    prepare: false,
    connect_timeout: 10,
    idle_timeout: 5,
    onnotice: () => {},
    types: { numeric: { to: 1700, from: [1700], serialize: (v: unknown) => String(v), parse: (v: string) => v } },
  });
}

async function userOf(sql: Sql, ref: string | undefined): Promise<{ id: string; email: string | null }> {
  if (!ref) throw new UsageError("give a user (id or email)");
  const [{ id }] = await sql<{ id: string }[]>`select private.find_user(${ref}) as id`;
  const [u] = await sql<{ email: string | null }[]>`select email from auth.users where id = ${id}`;
  return { id, email: u?.email ?? null };
}

// deno-lint-ignore no-explicit-any
type Answer = { status: number; body: any }; // a function's JSON answer, shape per function

async function callFunction(s: ReturnType<typeof settings>, name: string, body: unknown): Promise<Answer> {
  if (!s.url) throw new AdminError(`cannot call ${name}: no project URL (give --url or set SUPABASE_URL)`);
  if (!s.serviceKey) {
    throw new AdminError(
      `cannot call ${name}: no secret API key (set SUPABASE_SECRET_KEY, or the legacy SUPABASE_SERVICE_ROLE_KEY, in the environment or --env-file)`,
    );
  }
  let res: Response;
  try {
    res = await fetch(`${s.url.replace(/\/$/, "")}/functions/v1/${name}`, {
      method: "POST",
      // Hosted wants the new keys in apikey (they are not JWTs); Authorization carries the same value.
      headers: {
        apikey: s.serviceKey,
        Authorization: `Bearer ${s.serviceKey}`,
        "Content-Type": "application/json",
        "x-client-info": "litellm-credits-admin",
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(90_000),
    });
  } catch (e) {
    throw new AdminError(
      `cannot reach ${name} at ${s.url}: ${(e as Error).name === "TimeoutError" ? "timed out" : "unreachable"}`,
    );
  }
  const text = await res.text();
  let parsed: Answer["body"] = null;
  try {
    parsed = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body: parsed ?? { message: text.slice(0, 300) } };
}

function functionError(name: string, r: Answer): never {
  throw new AdminError(`${name} answered ${r.status}: ${r.body?.message ?? r.body?.error ?? JSON.stringify(r.body)}`);
}

// ------------------------------------------------------------------ commands
function parseAmount(raw: string | undefined): string {
  if (!raw) throw new UsageError("give an amount in USD, e.g. 5 or 2.50");
  if (!/^\d{1,7}(\.\d{1,2})?$/.test(raw) || compareMoney(raw, "0") === 0) {
    throw new UsageError(`"${raw}" is not an amount: a positive number of USD with at most 2 decimals, e.g. 5 or 2.50`);
  }
  return raw;
}

/** A positive decimal as typed (major units or a rate), passed to SQL as numeric: never a float. */
function parseDecimal(raw: string | boolean | undefined, what: string): string {
  if (typeof raw !== "string" || !/^\d{1,12}(\.\d{1,12})?$/.test(raw) || compareMoney(raw, "0") === 0) {
    throw new UsageError(
      `${what} must be a positive number written with digits and at most one point, ` +
        `e.g. 7500 or 1550.25 (got ${JSON.stringify(raw ?? "")})`,
    );
  }
  return raw;
}

/** currencies, prices and merchant-name: thin calls of the private.* functions (migration 20261202000600). */
async function pricing(sql: Sql, command: string, args: string[], flags: Record<string, string | boolean>) {
  const [verb, ...rest] = args;
  const arity = (n: number, usage: string) => {
    if (rest.length !== n) throw new UsageError(`usage: ${command} ${usage}`);
  };
  const show = (rows: Record<string, unknown>[], empty: string) => out(rows, () => table(rows, empty));
  const minimum = sql`private.subunits_text(min_subunits, exponent) as minimum`;
  if (command === "currencies" && verb === undefined) {
    return show(
      await sql`select code, name, enabled, is_default as "default", channels, ${minimum}, exponent,
                                 whole_units
                            from public.currencies order by enabled desc, sort_order`,
      "no currencies",
    );
  }
  if (command === "currencies" && (verb === "enable" || verb === "disable")) {
    const options = verb === "enable" ? " [--default] [--channels card,mobile_money] [--min <amount>]" : "";
    arity(1, `${verb} <CODE>${options}`);
    const channels = typeof flags.channels === "string"
      ? flags.channels.split(",").map((c) => c.trim()).filter(Boolean)
      : null;
    const min = flags.min === undefined ? null : parseDecimal(flags.min, "--min");
    return show(
      await sql`select code, enabled, is_default as "default", channels, ${minimum}
                            from private.set_currency(${rest[0]}, ${verb === "enable"}, ${flags.default === true},
                                                      ${channels}, ${min}::numeric)`,
      "",
    );
  }
  if (command === "prices" && verb === undefined) {
    return show(
      await sql`select pp.plan, pp.currency, private.subunits_text(pp.amount_subunits, c.exponent) as amount,
                                 pp.amount_subunits, pp.active, c.enabled as currency_enabled, pp.fx_rate, pp.updated_at
                            from public.plan_prices pp join public.currencies c on c.code = pp.currency
                            join public.plans pl on pl.code = pp.plan order by c.sort_order, pl.sort_order`,
      "no prices",
    );
  }
  if (command === "prices" && verb === "set") {
    arity(3, "set <plan> <CODE> <amount in major units>");
    const amount = parseDecimal(rest[2], "the amount");
    return show(
      await sql`select plan, currency, amount_subunits
                            from private.set_price(${rest[0]}, ${rest[1]}, ${amount}::numeric)`,
      "",
    );
  }
  if (command === "prices" && verb === "derive") {
    arity(1, "derive <CODE> --rate <CODE per USD> [--round <step in major units>]");
    const rate = parseDecimal(flags.rate, "--rate");
    const round = flags.round === undefined ? null : parseDecimal(flags.round, "--round");
    return show(
      await sql`select plan, usd_subunits, amount_subunits, fx_rate
                            from private.derive_prices(${rest[0]}, ${rate}::numeric, ${round}::numeric)`,
      "no USD prices to derive from",
    );
  }
  if (command === "merchant-name" && verb === undefined) {
    const [r] = await sql`select private.setting('merchant_name') #>> '{}' as merchant_name`;
    return out(r, () => console.log(r.merchant_name));
  }
  if (command === "merchant-name" && verb === "set") {
    if (rest.length === 0) throw new UsageError("usage: merchant-name set <name>");
    const [r] = await sql`select private.set_merchant_name(${rest.join(" ")}) as merchant_name`;
    return out(r, () => console.log(`receipts now name the shop "${r.merchant_name}"`));
  }
  throw new UsageError(`unknown ${command} command "${verb}" (see \`npm run admin -- help\`)`);
}

async function adjust(
  sql: Sql,
  s: ReturnType<typeof settings>,
  flags: Record<string, string | boolean>,
  args: string[],
  sign: 1 | -1,
) {
  const verb = sign > 0 ? "grant" : "deduct";
  if (args.length > 2) throw new UsageError(`${verb} takes a user and an amount (put the reason in --reason "...")`);
  const amount = parseAmount(args[1]);
  const reason = typeof flags.reason === "string" ? flags.reason.trim() : "";
  if (reason.length < 3) {
    throw new UsageError(`${verb} needs --reason "..." (at least 3 characters): it is recorded in the ledger`);
  }
  const user = await userOf(sql, args[0]);
  const signed = sign > 0 ? amount : `-${amount}`;
  const [r] = await sql<
    {
      ledger_id: string;
      is_new: boolean;
      key_id: string | null;
      granted: string;
      remaining: string;
      target_max_budget: string | null;
    }[]
  >`
    select * from private.adjust_credit(${user.id}, ${signed}::numeric, ${reason}, ${s.by}, ${
    (flags["idempotency-key"] as string | undefined) ?? null
  })`;
  // The ledger row is committed. Push the new absolute target now; if that fails, reconcile repairs it.
  let push: { outcome: string; detail?: string } = { outcome: "skipped", detail: "the user has no key yet" };
  if (r.key_id) {
    try {
      const p = await callFunction(s, "push-budget", { user_id: user.id });
      push = p.status === 200
        ? { outcome: p.body.budget_push }
        : { outcome: "failed", detail: p.body?.message ?? `status ${p.status}` };
    } catch (e) {
      push = { outcome: "failed", detail: (e as Error).message };
    }
  }
  out({ command: verb, user_id: user.id, amount: signed, ...r, budget_push: push }, () => {
    console.log(
      `${r.is_new ? (sign > 0 ? "granted" : "deducted") : "already recorded (same idempotency key)"}: ${amount} USD ${
        sign > 0 ? "to" : "from"
      } ${user.email ?? user.id}`,
    );
    console.log(`ledger row ${r.ledger_id} (adjustment, by ${s.by}): "${reason}"`);
    console.log(
      `granted in total ${r.granted} USD, remaining ${formatMoney(r.remaining)} USD; key target ${
        r.target_max_budget ?? "-"
      }`,
    );
    console.log(`budget push: ${push.outcome}${push.detail ? ` (${push.detail})` : ""}`);
  });
  if (push.outcome === "failed") {
    console.error("admin: warning: the budget push failed; reconcile-spend pushes the new budget within a minute");
  }
}

async function run(argv: string[]): Promise<number> {
  const { positional, flags } = parseArgs(argv);
  asJson = flags.json === true;
  const [command, ...args] = positional;
  if (!command || command === "help" || flags.help) {
    console.log(HELP);
    return command || flags.help ? 0 : 2;
  }
  const s = settings(flags);
  const limit = flags.limit === undefined ? 50 : Number(flags.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new UsageError("--limit must be a whole number from 1 to 10000");
  }
  const noArgs = () => {
    if (args.length) throw new UsageError(`${command} takes no arguments`);
  };
  /** A read-only list command: no arguments, its rows as a table (or JSON), `empty` when there are none. */
  const list = async (query: () => Promise<Record<string, unknown>[]>, empty: string) => {
    noArgs();
    const rows = await query();
    out(rows, () => table(rows, empty));
    return 0;
  };
  const known = [
    "failures",
    "drift",
    "dead-jobs",
    "rejected",
    "rotations",
    "alerts",
    "resets",
    "repairs",
    "audit",
    "user",
    "requeue",
    "push-budget",
    "reconcile",
    "recreate",
    "grant",
    "deduct",
    "rotate",
    "currencies",
    "prices",
    "merchant-name",
    "usage-gaps",
    "promo",
    "export",
  ];
  if (!known.includes(command)) throw new UsageError(`unknown command "${command}" (see \`npm run admin -- help\`)`);

  const sql = connect(s.dbUrl);
  // The list commands that only read one admin view: their query and what they print when it has no row.
  const views: Record<string, [() => Promise<Record<string, unknown>[]>, string]> = {
    failures: [
      () => sql`select * from public.admin_sync_failures order by last_sync_at desc nulls last`,
      "no sync failures",
    ],
    drift: [
      () => sql`select * from public.admin_drift order by key_id`,
      "no drift: every active key's LiteLLM budget matches the ledger",
    ],
    "dead-jobs": [
      () => sql`select * from public.admin_dead_jobs order by finished_at desc nulls last`,
      "no dead provisioning jobs",
    ],
    rejected: [
      () => sql`select * from public.admin_rejected_deliveries order by received_at desc limit ${limit}`,
      "no rejected deliveries",
    ],
    rotations: [() => sql`select * from public.admin_key_rotations order by rotation_id`, "no unfinished rotations"],
    repairs: [
      () => sql`select * from public.admin_litellm_repairs order by created_at desc limit ${limit}`,
      "no repairs",
    ],
    "usage-gaps": [
      () => sql`select * from public.admin_usage_gaps order by abs(other) desc limit ${limit}`,
      "no usage gaps: every key's spend is explained by its models",
    ],
  };
  try {
    if (Object.hasOwn(views, command)) return await list(...views[command]);
    switch (command) {
      case "alerts":
        return await list(
          () =>
            flags.all
              ? sql`select * from public.admin_alerts order by alert_id desc limit ${limit}`
              : sql`select * from public.admin_alerts where delivery_status in ('pending', 'failed') order by alert_id desc limit ${limit}`,
          flags.all ? "no alerts" : "no undelivered alerts",
        );
      case "audit": {
        noArgs();
        // LiteLLM is read by reconcile-spend's audit mode, a few chunks of 1000 keys per call.
        type Chunk = {
          keys: number;
          litellm_spend: string;
          mismatches: {
            key_id: string;
            user_id: string;
            kind: string;
            ledger: string | null;
            litellm: string | null;
          }[];
        };
        const chunks: Chunk[] = [];
        for (let from: number | null = 0; from !== null;) {
          const r = await callFunction(s, "reconcile-spend", { audit: true, from_chunk: from });
          if (r.status !== 200) functionError("reconcile-spend (audit)", r);
          chunks.push(...r.body.chunks);
          from = r.body.next_chunk;
        }
        const mismatches = chunks.flatMap((c) => c.mismatches);
        const [{ totals }] = await sql<{ totals: Record<string, string> }[]>`select private.audit_totals() as totals`;
        // exact sum in SQL (never float money)
        const [{ spendOnLiteLLM }] = await sql<{ spendOnLiteLLM: string }[]>`
          select coalesce(sum(x::numeric), 0)::text as "spendOnLiteLLM" from unnest(${
          chunks.map((c) => c.litellm_spend)
        }::text[]) x`;
        const byKind: Record<string, number> = {};
        for (const m of mismatches) byKind[m.kind] = (byKind[m.kind] ?? 0) + 1;
        const report = {
          keys: chunks.reduce((a, c) => a + c.keys, 0),
          mismatches,
          by_kind: byKind,
          totals: { ...totals, spend_on_litellm: spendOnLiteLLM },
        };
        await sql`select private.record_audit(${mismatches.length}, ${sql.json(report as never)})`;
        out(report, () => {
          table(mismatches, "no mismatches: every live key agrees with LiteLLM");
          console.log(
            `\n${report.keys} key(s) audited; mismatches: ${mismatches.length}${
              mismatches.length ? ` (${Object.entries(byKind).map(([k, n]) => `${k} ${n}`).join(", ")})` : ""
            }`,
          );
          for (const [k, v] of Object.entries(report.totals)) {
            console.log(`${k.replaceAll("_", " ")}: ${formatMoney(v)} USD`);
          }
        });
        return mismatches.length ? 1 : 0;
      }
      case "resets": {
        noArgs();
        if (flags.ack) {
          const [{ n }] = await sql<{ n: number }[]>`select private.acknowledge_spend_resets(${s.by}) as n`;
          out({ command: "resets", acknowledged: n }, () => console.log(`acknowledged ${n} spend reset(s)`));
          return 0;
        }
        return await list(
          () =>
            flags.all
              ? sql`select * from public.admin_spend_resets order by id desc limit ${limit}`
              : sql`select * from public.admin_spend_resets where acknowledged_at is null order by id desc limit ${limit}`,
          flags.all ? "no spend resets" : "no spend resets to acknowledge",
        );
      }
      case "user": {
        if (args.length !== 1) throw new UsageError("user takes one user (id or email)");
        const u = await userOf(sql, args[0]);
        const [account] = await sql`select * from public.my_account where user_id = ${u.id}`;
        const keys =
          await sql`select id, 'sk-...' || right(key_value, 4) as key, status, sync_status, litellm_max_budget, spend, spend_offset, retired_spend,
                                      blocked, flag, created_at from public.api_keys where user_id = ${u.id} order by seq`;
        const ledger = await sql`select id, kind, amount, reason, created_by, created_at from public.credit_ledger
                                  where user_id = ${u.id} order by id desc limit ${limit}`;
        out({ account, keys, ledger }, () => {
          table(account ? [account] : [], "no profile");
          console.log();
          table(keys, "no keys");
          console.log();
          table(ledger, "no ledger rows");
        });
        return 0;
      }
      case "requeue": {
        if (args.length > 1) throw new UsageError("requeue takes at most one user");
        const u = args[0] ? await userOf(sql, args[0]) : null;
        const [{ n }] = await sql<{ n: number }[]>`select private.requeue_provisioning(${u?.id ?? null}) as n`;
        let run: unknown = null;
        if (n > 0) {
          try {
            const r = await callFunction(s, "provision-key", {});
            run = r.status === 200 ? r.body : { error: r.body?.message ?? `status ${r.status}` };
          } catch (e) {
            run = { error: `${(e as Error).message}; the provisioning sweep (pg_cron) runs them within a minute` };
          }
        }
        out({ requeued: n, provisioning: run }, () => {
          console.log(`re-queued ${n} dead provisioning job${n === 1 ? "" : "s"}${u ? ` of ${u.email ?? u.id}` : ""}`);
          if (run) console.log(`provisioning run: ${JSON.stringify(run)}`);
        });
        return 0;
      }
      case "recreate": {
        if (args.length !== 1) throw new UsageError("recreate takes one user (id or email) or all");
        const u = args[0] === "all" ? null : await userOf(sql, args[0]);
        const [{ n }] = await sql<{ n: number }[]>`select private.recreate_missing_keys(${u?.id ?? null}) as n`;
        // provision-key takes 10 jobs per invocation (bounded work): call it until nothing is left.
        const runs: { claimed: number; done: number; queued: number; dead: number }[] = [];
        for (let left = n; left > 0 && runs.length < 1000;) {
          const r = await callFunction(s, "provision-key", {});
          if (r.status !== 200) functionError("provision-key", r);
          runs.push(r.body);
          if (r.body.claimed === 0) break;
          left -= r.body.claimed;
        }
        const done = runs.reduce((a, r) => a + r.done, 0);
        out(
          { queued: n, recreated: done, provisioning_runs: runs.length },
          () =>
            console.log(
              `${n} key(s) deleted on LiteLLM queued${
                u ? ` for ${u.email ?? u.id}` : ""
              }; ${done} re-created with the same key value`,
            ),
        );
        return done === n ? 0 : 1;
      }
      case "push-budget": {
        if (args.length !== 1) throw new UsageError("push-budget takes one user (id or email)");
        const u = await userOf(sql, args[0]);
        const r = await callFunction(s, "push-budget", { user_id: u.id });
        if (r.status !== 200) functionError("push-budget", r);
        out(
          r.body,
          () =>
            console.log(
              `budget push for ${
                u.email ?? u.id
              }: ${r.body.budget_push} (target ${r.body.target_max_budget}), block: ${r.body.block_push}`,
            ),
        );
        return 0;
      }
      case "reconcile": {
        if (args.length !== 1) throw new UsageError('reconcile takes one user (id or email) or "all"');
        const results: Answer["body"][] = [];
        if (args[0] === "all") {
          // Every chunk, 100 per call, until a call finds none left (force: due or not).
          for (let i = 0; i < 1000; i++) {
            const r = await callFunction(s, "reconcile-spend", { force: true, max_chunks: 100, source: "admin" });
            if (r.status !== 200) functionError("reconcile-spend", r);
            results.push(r.body);
            if (r.body.claimed < 100) break;
          }
        } else {
          const u = await userOf(sql, args[0]);
          // A cron run may hold the user's chunk for a moment: try a few times.
          for (let i = 0; i < 10; i++) {
            const r = await callFunction(s, "reconcile-spend", { user_id: u.id, source: "admin" });
            if (r.status !== 200) functionError("reconcile-spend", r);
            if (r.body.claimed > 0 || i === 9) {
              results.push(r.body);
              break;
            }
            await new Promise((res) => setTimeout(res, 500));
          }
        }
        const sum = (k: string) => results.reduce((a, r) => a + (Number(r[k]) || 0), 0);
        const summary = {
          runs: results.length,
          chunks: sum("chunks"),
          keys: sum("keys"),
          snapshots: sum("snapshots"),
          repairs: sum("repairs"),
          repair_failures: sum("repair_failures"),
          missing: sum("missing"),
          outcome: results.every((r) => r.outcome === "ok") ? "ok" : "partial",
        };
        out({ ...summary, results }, () => {
          console.log(
            `reconciled ${summary.keys} key${
              summary.keys === 1 ? "" : "s"
            } in ${summary.chunks} chunk(s): ${summary.snapshots} snapshot(s), ` +
              `${summary.repairs} budget repair(s), ${summary.repair_failures} repair failure(s), ${summary.missing} missing on LiteLLM (${summary.outcome})`,
          );
          if (summary.chunks === 0) {
            console.log("nothing claimed: the user has no active key, or a cron run holds the chunk (try again)");
          }
        });
        return 0;
      }
      case "grant":
        await adjust(sql, s, flags, args, 1);
        return 0;
      case "deduct":
        await adjust(sql, s, flags, args, -1);
        return 0;
      case "currencies":
      case "prices":
      case "merchant-name":
        await pricing(sql, command, args, flags);
        return 0;
      case "promo": {
        const r = await promo(sql, args, flags, s.by, (m) => {
          throw new UsageError(m);
        });
        out(r.rows, () => table(r.rows, r.message));
        return 0;
      }
      case "export": {
        if (args.length !== 1 || args[0] !== "ledger") throw new UsageError("export ledger --from ... --to ...");
        const o = exportOptions(flags, (m) => {
          throw new UsageError(m);
        });
        const userId = typeof flags.user === "string" ? (await userOf(sql, flags.user)).id : null;
        await exportLedger(sql, { ...o, userId });
        return 0;
      }
      case "rotate": {
        if (args.length !== 1) throw new UsageError("rotate takes one user (id or email)");
        const u = await userOf(sql, args[0]);
        const r = await callFunction(s, "rotate-key", { user_id: u.id, requested_by: s.by });
        if (r.status !== 200 && r.status !== 202) functionError("rotate-key", r);
        out(r.body, () => {
          if (r.body.state === "done") {
            console.log(
              `rotated the key of ${
                u.email ?? u.id
              }: new key ${r.body.key_masked} with max_budget ${r.body.max_budget}; old key deleted`,
            );
          } else {console.log(
              `rotation ${r.body.rotation_id} is waiting ${r.body.resume_in_seconds} s for the old key's spend to settle; ops-sweep finishes it (or run this again)`,
            );}
          for (const step of r.body.steps ?? []) console.log(`  - ${step}`);
        });
        return 0;
      }
    }
    return 2;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

try {
  Deno.exit(await run(Deno.args));
} catch (e) {
  if (e instanceof UsageError) {
    console.error(`admin: ${e.message}`);
    Deno.exit(2);
  }
  const err = e as { message?: string; code?: string; hint?: string };
  const connection = ["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "CONNECT_TIMEOUT", "28P01", "3D000"].includes(
    err.code ?? "",
  );
  console.error(
    `admin: ${
      connection ? `cannot connect to the database (${err.code}): check --db-url` : mask(err.message ?? String(e))
    }`,
  );
  Deno.exit(1);
}
