// LiteLLM proxy emulator: test infrastructure only, never imported by product code.
//   deno run -A stack/emulators/litellm/main.ts
// Environment (all optional): LITELLM_EMULATOR_PORT (4000), LITELLM_EMULATOR_ADMIN_PORT (port + 1),
// LITELLM_MASTER_KEY (sk-local-master-key), LITELLM_BATCH_WRITE_MS (10000; 0 = at once),
// LITELLM_CALLBACK_URL and LITELLM_CALLBACK_AUTH (the logging callback and its Authorization header).
// README.md in this folder lists the routes, the admin API and who relies on what.
import { adminHandler } from "./admin.ts";
import { MainListener } from "./server.ts";
import { EmulatorState } from "./state.ts";

export interface EmulatorOptions {
  port?: number; // 0 picks a free one; default 4000
  adminPort?: number; // default port + 1 (0 when port is 0)
  hostname?: string;
  masterKey?: string;
  batchWriteMs?: number;
  callbackUrl?: string; // generic API logging callback (off when unset)
  callbackHeaders?: Record<string, string>;
}

export interface RunningEmulator {
  url: string;
  adminUrl: string;
  close(): Promise<void>;
}

export function startLiteLLMEmulator(opts: EmulatorOptions = {}): Promise<RunningEmulator> {
  const { hostname = "127.0.0.1", port = 4000, masterKey = "sk-local-master-key" } = opts;
  const callback = { endpoint: opts.callbackUrl ?? null, headers: opts.callbackHeaders ?? {} };
  const config = { batch_write_ms: opts.batchWriteMs ?? 10_000, stream_chunk_delay_ms: 0 };
  const state = new EmulatorState(masterKey, config, callback);
  const main = new MainListener(state, hostname, port);
  let admin: Deno.HttpServer<Deno.NetAddr>;
  try {
    main.open();
    const adminPort = opts.adminPort ?? (port === 0 ? 0 : port + 1);
    admin = Deno.serve({ hostname, port: adminPort, onListen: () => {} }, adminHandler(state, main));
  } catch (e) {
    state.dispose();
    main.close();
    return Promise.reject(e);
  }
  return Promise.resolve({
    url: `http://${hostname}:${main.port}`,
    adminUrl: `http://${hostname}:${admin.addr.port}`,
    async close() {
      state.dispose();
      await Promise.all([main.closeAndWait(), admin.shutdown()]);
    },
  });
}

if (import.meta.main) {
  const env = (name: string) => Deno.env.get(name) || undefined;
  const int = (name: string) => {
    const n = env(name) === undefined ? undefined : Number(env(name));
    if (n !== undefined && !Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${env(name)}`);
    return n;
  };
  const auth = env("LITELLM_CALLBACK_AUTH");
  const emu = await startLiteLLMEmulator({
    port: int("LITELLM_EMULATOR_PORT"),
    adminPort: int("LITELLM_EMULATOR_ADMIN_PORT"),
    masterKey: env("LITELLM_MASTER_KEY"),
    batchWriteMs: int("LITELLM_BATCH_WRITE_MS"),
    callbackUrl: env("LITELLM_CALLBACK_URL"),
    callbackHeaders: auth ? { Authorization: auth } : {},
  });
  console.log(`litellm-emulator listening on ${emu.url} (admin ${emu.adminUrl})`);
  const stop = async (sig: string) => {
    console.log(`litellm-emulator: ${sig}, shutting down`);
    setTimeout(() => Deno.exit(0), 2000); // a held or streaming request does not keep us up
    await emu.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
}
