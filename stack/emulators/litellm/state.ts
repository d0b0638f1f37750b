// Everything the two ports share: the key store, the runtime configuration (changeable
// through the admin port), faults, rate-limit windows, request counters and the two
// background jobs of the real proxy (the spend batch writer and the budget reset job).

import { type CallbackConfig, GenericApiLogger } from "./callback.ts";
import { durationMs } from "./duration.ts";
import { Faults } from "./faults.ts";
import { RateLimits } from "./ratelimit.ts";
import { KeyStore } from "./store.ts";

export interface RuntimeConfig {
  /** PROXY_BATCH_WRITE_AT: how often spend reaches the database view (0 = at once). */
  batch_write_ms: number;
  /** 400 (older releases) or 429 (newest) for budget_exceeded. */
  budget_exceeded_status: number;
  /** Extra latency of every chat completion, before its cost is recorded. */
  latency_ms: number;
  /** Pause between streamed chunks (the stream is costed when it ends). */
  stream_chunk_delay_ms: number;
  /** How often the budget reset job runs (LiteLLM: about every 10 minutes). */
  budget_reset_check_ms: number;
}

export const CONFIG_LIMITS: Record<keyof RuntimeConfig, [number, number]> = {
  batch_write_ms: [0, 3_600_000],
  budget_exceeded_status: [400, 599],
  latency_ms: [0, 600_000],
  stream_chunk_delay_ms: [0, 60_000],
  budget_reset_check_ms: [100, 86_400_000],
};

export class EmulatorState {
  readonly store = new KeyStore();
  readonly faults = new Faults();
  readonly limits = new RateLimits();
  readonly callback: GenericApiLogger;
  readonly masterKey: string;
  config: RuntimeConfig;
  private readonly initialConfig: RuntimeConfig;
  private requests = new Map<string, number>();
  private total = 0;
  private flushTimer: ReturnType<typeof setInterval> | undefined;
  private resetTimer: ReturnType<typeof setInterval> | undefined;

  constructor(masterKey: string, config: RuntimeConfig, callback: CallbackConfig = { endpoint: null, headers: {}, flush_ms: 1000 }) {
    this.masterKey = masterKey;
    this.callback = new GenericApiLogger(callback);
    this.initialConfig = { ...config };
    this.config = { ...config };
    this.startJobs();
  }

  /** Spend written straight to the database view (batch_write_ms = 0)? */
  get immediateWrites(): boolean {
    return this.config.batch_write_ms === 0;
  }

  applyConfig(patch: Partial<RuntimeConfig>): RuntimeConfig {
    this.config = { ...this.config, ...patch };
    // Going to "immediate" must not strand spend queued under the old interval.
    if (this.immediateWrites) this.store.flush();
    this.startJobs();
    return { ...this.config };
  }

  count(method: string, path: string): void {
    const k = `${method} ${path}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
    this.total++;
  }

  stats(): {
    requests: Record<string, number>;
    total: number;
    keys: number;
    pending_spend_writes: number;
  } {
    return {
      requests: Object.fromEntries(this.requests),
      total: this.total,
      keys: this.store.size,
      pending_spend_writes: this.store.pendingWrites,
    };
  }

  resetStats(): void {
    this.requests.clear();
    this.total = 0;
  }

  runBudgetReset(now = Date.now()): number {
    return this.store.resetBudgets(now, durationMs);
  }

  /** /admin/reset: no keys, faults, windows or counters; configuration as at start. */
  reset(): void {
    this.faults.clear();
    this.store.clear();
    this.limits.clear();
    this.resetStats();
    this.config = { ...this.initialConfig };
    this.startJobs();
  }

  dispose(): void {
    this.callback.dispose();
    clearInterval(this.flushTimer);
    clearInterval(this.resetTimer);
    this.faults.clear();
  }

  private startJobs(): void {
    clearInterval(this.flushTimer);
    clearInterval(this.resetTimer);
    this.flushTimer = undefined;
    if (this.config.batch_write_ms > 0) {
      this.flushTimer = setInterval(
        () => this.store.flush(),
        this.config.batch_write_ms,
      );
    }
    this.resetTimer = setInterval(
      () => this.runBudgetReset(),
      this.config.budget_reset_check_ms,
    );
  }
}
