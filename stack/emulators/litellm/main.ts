// LiteLLM proxy emulator: test infrastructure only, never imported by product code.
//
//   deno run -A stack/emulators/litellm/main.ts
//
// Environment (all optional):
//   LITELLM_EMULATOR_PORT           main (LiteLLM API) port, default 4000
//   LITELLM_EMULATOR_ADMIN_PORT     admin port, default main port + 1
//   LITELLM_EMULATOR_HOST           bind address, default 127.0.0.1
//   LITELLM_MASTER_KEY              master key, default "sk-local-master-key"
//   LITELLM_BATCH_WRITE_MS          spend -> database view interval, default 10000 (0 = at once)
//   LITELLM_BUDGET_EXCEEDED_STATUS  status of budget_exceeded errors, default 400 (429 = newest)
//   LITELLM_EMULATOR_SEED_KEYS      keys to bulk-create at start, default 0
//   LITELLM_EMULATOR_LOG            "1" logs every main-port request
//   LITELLM_CALLBACK_URL            generic API logging callback endpoint (off when unset)
//   LITELLM_CALLBACK_AUTH           its Authorization header value; LITELLM_CALLBACK_FLUSH_MS batch interval (1000)
//
// See README.md in this folder for the routes and the admin API.

import { adminHandler } from "./admin.ts";
import { MainListener } from "./server.ts";
import { CONFIG_LIMITS, EmulatorState, type RuntimeConfig } from "./state.ts";

export interface EmulatorOptions {
  /** Main port; 0 picks a free one. Default 4000. */
  port?: number;
  /** Admin port; 0 picks a free one. Default port + 1 (or 0 when port is 0). */
  adminPort?: number;
  hostname?: string;
  masterKey?: string;
  batchWriteMs?: number;
  budgetExceededStatus?: number;
  seedKeys?: number;
  latencyMs?: number;
  streamChunkDelayMs?: number;
  budgetResetCheckMs?: number;
  log?: boolean;
  /** Generic API logging callback: where costed requests are POSTed in batches (off when unset). */
  callbackUrl?: string;
  callbackHeaders?: Record<string, string>;
  callbackFlushMs?: number;
}

export interface RunningEmulator {
  url: string;
  adminUrl: string;
  port: number;
  adminPort: number;
  masterKey: string;
  /** In-process access for Deno tests; HTTP callers use the admin API instead. */
  state: EmulatorState;
  close(): Promise<void>;
}

export function startLiteLLMEmulator(
  opts: EmulatorOptions = {},
): Promise<RunningEmulator> {
  const hostname = opts.hostname ?? "127.0.0.1";
  const port = opts.port ?? 4000;
  const adminPort = opts.adminPort ?? (port === 0 ? 0 : port + 1);
  const masterKey = opts.masterKey ?? "sk-local-master-key";
  const config: RuntimeConfig = {
    batch_write_ms: opts.batchWriteMs ?? 10_000,
    budget_exceeded_status: opts.budgetExceededStatus ?? 400,
    latency_ms: opts.latencyMs ?? 0,
    stream_chunk_delay_ms: opts.streamChunkDelayMs ?? 0,
    budget_reset_check_ms: opts.budgetResetCheckMs ?? 600_000,
  };
  for (
    const [k, [min, max]] of Object.entries(CONFIG_LIMITS) as [
      keyof RuntimeConfig,
      [number, number],
    ][]
  ) {
    const v = config[k];
    if (!Number.isInteger(v) || v < min || v > max) {
      return Promise.reject(
        new Error(`invalid ${k}=${v}: want an integer in [${min}, ${max}]`),
      );
    }
  }

  const state = new EmulatorState(masterKey, config, {
    endpoint: opts.callbackUrl || null,
    headers: opts.callbackHeaders ?? {},
    flush_ms: opts.callbackFlushMs ?? 1000,
  });
  if (opts.seedKeys && opts.seedKeys > 0) {
    state.store.seed({ count: opts.seedKeys });
  }

  const main = new MainListener(state, hostname, port, opts.log ?? false);
  let admin: Deno.HttpServer<Deno.NetAddr>;
  try {
    main.open();
    admin = Deno.serve(
      { hostname, port: adminPort, onListen: () => {} },
      adminHandler(state, main),
    );
  } catch (e) {
    state.dispose();
    main.close();
    return Promise.reject(e);
  }

  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  let closed = false;
  return Promise.resolve({
    url: `http://${host}:${main.port}`,
    adminUrl: `http://${host}:${admin.addr.port}`,
    port: main.port,
    adminPort: admin.addr.port,
    masterKey,
    state,
    async close() {
      if (closed) return;
      closed = true;
      state.dispose(); // stops timers and wakes held (hang/timeout) requests
      await Promise.all([main.closeAndWait(), admin.shutdown()]);
    },
  });
}

function envInt(name: string, dflt: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw.trim() === "") return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n)) {
    throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

if (import.meta.main) {
  const port = envInt("LITELLM_EMULATOR_PORT", 4000);
  const emu = await startLiteLLMEmulator({
    port,
    adminPort: envInt("LITELLM_EMULATOR_ADMIN_PORT", port + 1),
    hostname: Deno.env.get("LITELLM_EMULATOR_HOST") || "127.0.0.1",
    masterKey: Deno.env.get("LITELLM_MASTER_KEY") || "sk-local-master-key",
    batchWriteMs: envInt("LITELLM_BATCH_WRITE_MS", 10_000),
    budgetExceededStatus: envInt("LITELLM_BUDGET_EXCEEDED_STATUS", 400),
    seedKeys: envInt("LITELLM_EMULATOR_SEED_KEYS", 0),
    log: Deno.env.get("LITELLM_EMULATOR_LOG") === "1",
    callbackUrl: Deno.env.get("LITELLM_CALLBACK_URL") || undefined,
    callbackHeaders: Deno.env.get("LITELLM_CALLBACK_AUTH") ? { Authorization: Deno.env.get("LITELLM_CALLBACK_AUTH")! } : {},
    callbackFlushMs: envInt("LITELLM_CALLBACK_FLUSH_MS", 1000),
  });
  console.log(
    `litellm-emulator listening on ${emu.url} (admin ${emu.adminUrl}, batch_write_ms=${emu.state.config.batch_write_ms}, ` +
      `budget_exceeded_status=${emu.state.config.budget_exceeded_status}, keys=${emu.state.store.size})`,
  );
  const stop = async (sig: string) => {
    console.log(`litellm-emulator: ${sig}, shutting down`);
    // Do not wait forever on long-lived streams: give in-flight requests a moment, then exit.
    const timer = setTimeout(() => Deno.exit(0), 2000);
    await emu.close();
    clearTimeout(timer);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
}
