// Fault injection for the main port: "the next N calls of route R fail like this".
//
// Modes:
// - "500":     answer 500 at once; the request has no effect.
// - "429":     answer 429 (retry-after: 1) at once; no effect.
// - "timeout": the request IS processed (its effects apply), but the answer is held for
//              delay_ms (default 30 s). This is the hard case for callers: the work happened
//              even though their client timed out, so retries must be idempotent.
// - "hang":    never answer and do nothing, until faults are cleared, the emulator is reset
//              or the main port goes down; held requests then get a 503.
// - "bare":    the request IS processed, and a successful answer is replaced by 200 `{}`: an
//              answer that confirms nothing (callers must not read it as "done as asked").

export type FaultMode = "500" | "429" | "timeout" | "hang" | "bare";
export const FAULT_MODES: readonly FaultMode[] = [
  "500",
  "429",
  "timeout",
  "hang",
  "bare",
];

export interface Fault {
  id: number;
  /** "/key/generate", "POST /key/generate" or "*" (every route except /health/*). */
  route: string;
  remaining: number;
  mode: FaultMode;
  delay_ms: number;
}

export const DEFAULT_TIMEOUT_DELAY_MS = 30_000;

export class Faults {
  private faults: Fault[] = [];
  private nextId = 1;
  /** Wake-ups for held requests (hang / timeout), fired on clear/reset/down/close. */
  private held = new Set<() => void>();

  list(): Fault[] {
    return this.faults.map((f) => ({ ...f }));
  }

  add(route: string, count: number, mode: FaultMode, delayMs?: number): Fault {
    const f: Fault = {
      id: this.nextId++,
      route,
      remaining: count,
      mode,
      delay_ms: delayMs ?? DEFAULT_TIMEOUT_DELAY_MS,
    };
    this.faults.push(f);
    return { ...f };
  }

  /** Consume one matching fault for this request, if any (oldest first). */
  take(method: string, path: string): Fault | null {
    const isHealth = path.startsWith("/health/");
    for (let i = 0; i < this.faults.length; i++) {
      const f = this.faults[i];
      const matches = f.route === "*"
        ? !isHealth
        : f.route.includes(" ")
        ? f.route === `${method} ${path}`
        : f.route === path;
      if (!matches) continue;
      f.remaining--;
      if (f.remaining <= 0) this.faults.splice(i, 1);
      return { ...f };
    }
    return null;
  }

  /** Drop every fault and wake every held request. */
  clear(): void {
    this.faults = [];
    this.releaseHeld();
  }

  releaseHeld(): void {
    const wakes = [...this.held];
    this.held.clear();
    for (const w of wakes) w();
  }

  /**
   * Hold a request for `ms` (null = until released). Resolves "elapsed", "released" (by
   * clear/reset/down) or "aborted" (the client went away).
   */
  hold(
    ms: number | null,
    signal?: AbortSignal,
  ): Promise<"elapsed" | "released" | "aborted"> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (why: "elapsed" | "released" | "aborted") => {
        if (timer !== undefined) clearTimeout(timer);
        this.held.delete(wake);
        signal?.removeEventListener("abort", onAbort);
        resolve(why);
      };
      const wake = () => done("released");
      const onAbort = () => done("aborted");
      this.held.add(wake);
      if (signal?.aborted) return done("aborted");
      signal?.addEventListener("abort", onAbort);
      if (ms !== null) timer = setTimeout(() => done("elapsed"), ms);
    });
  }
}
