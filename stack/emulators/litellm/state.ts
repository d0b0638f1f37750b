// What both ports share: keys, runtime config, queued faults, request counts, the spend batch writer,
// the logging callback, and the proxy's key check (user_api_key_auth, reduced to what we use).
import { DailySpend } from "./activity.ts";
import { type CallbackTarget, GenericApiLogger } from "./callback.ts";
import { proxyError } from "./http.ts";
import { type KeyRow, KeyStore } from "./store.ts";

export interface Config {
  batch_write_ms: number; // PROXY_BATCH_WRITE_AT: how often spend reaches the database view (0 = at once)
  stream_chunk_delay_ms: number; // pause between streamed chunks (a stream is costed when it ends)
}

export const FAULT_MODES = ["500", "429", "timeout", "bare"] as const;
export interface Fault {
  route: string; // a main-port path, e.g. "/key/generate"
  remaining: number;
  mode: typeof FAULT_MODES[number];
  delay_ms: number; // timeout mode: how late the answer comes
}

export type Caller = { master: true } | { master: false; key: string; row: KeyRow };

export class EmulatorState {
  readonly store = new KeyStore();
  readonly daily = new DailySpend(); // LiteLLM_DailyUserSpend, written by the same batch writer as spend
  readonly callback: GenericApiLogger;
  config: Config;
  faults: Fault[] = [];
  requests = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly masterKey: string, private readonly initial: Config, callback: CallbackTarget) {
    this.config = { ...initial };
    this.callback = new GenericApiLogger(callback);
    this.setConfig({});
  }

  get immediateWrites(): boolean {
    return this.config.batch_write_ms === 0;
  }

  setConfig(patch: Partial<Config>): Config {
    this.config = { ...this.config, ...patch };
    if (this.immediateWrites) this.flush(); // nothing queued under the old interval is stranded
    clearInterval(this.timer);
    this.timer = this.immediateWrites ? undefined : setInterval(() => this.flush(), this.config.batch_write_ms);
    return this.config;
  }

  /** The batch writer: pending key spend and daily rows reach the database view. Returns key rows written. */
  flush(): number {
    this.daily.flush();
    return this.store.flush();
  }

  /** Consumes one queued fault for this path, oldest first. */
  takeFault(path: string): Fault | undefined {
    const f = this.faults.find((x) => x.route === path);
    if (f && --f.remaining <= 0) this.faults.splice(this.faults.indexOf(f), 1);
    return f;
  }

  count(method: string, path: string): void {
    const k = `${method} ${path}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
  }

  /** The presented key: master, or a known virtual key that is not blocked (401 otherwise). */
  authenticate(req: Request): Caller {
    const key = req.headers.get("authorization")?.replace(/^Bearer\s*/i, "").trim();
    if (!key) throw proxyError(401, "Authentication Error, No api key passed in.", "auth_error");
    if (key === this.masterKey) return { master: true };
    const row = this.store.get(key);
    if (!key.startsWith("sk-") || !row) {
      throw proxyError(401, "Authentication Error, Invalid proxy server token passed.", "token_not_found_in_db", "key");
    }
    if (row.blocked) {
      const msg = "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.";
      throw proxyError(401, msg, "auth_error");
    }
    return { master: false, key, row };
  }

  /** Management routes: the master key only (RouteChecks). */
  requireMaster(req: Request): void {
    if (!this.authenticate(req).master) {
      throw proxyError(401, "Authentication Error, Only proxy admin can call this route.", "auth_error");
    }
  }

  /** /admin/reset: no keys, faults or counts; config as at start. */
  reset(): void {
    this.store.clear();
    this.daily.clear();
    this.faults = [];
    this.requests.clear();
    this.setConfig(this.initial);
  }

  dispose(): void {
    clearInterval(this.timer);
    this.callback.dispose();
  }
}
