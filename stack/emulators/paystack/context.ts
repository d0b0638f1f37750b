// Shared state of one emulator instance: configuration, the store, the webhook dispatcher and the
// helpers that turn state changes into signed events.

import {
  type Dispute,
  disputeEventData,
  type Domain,
  type Refund,
  refundEventData,
  type RefundStatus,
  Store,
  type Transaction,
  transactionData,
} from "./store.ts";
import {
  type Attempt,
  type Delivery,
  eventBody,
  signPaystackBody,
  WebhookDispatcher,
} from "./webhooks.ts";

export interface RuntimeConfig {
  webhookUrl: string;
  retryMs: number[];
  /** per-attempt timeout for webhook deliveries */
  timeoutMs: number;
  /** delay between POST /refund and its refund.processed / refund.failed event */
  refundDelayMs: number;
}

/** A finished first attempt as admin routes report it. */
export interface AttemptReport {
  delivery_id: number;
  event: string;
  reference: string | null;
  status_code: number | null;
  error: string | null;
}

export function report(d: Delivery, a: Attempt): AttemptReport {
  return {
    delivery_id: d.id,
    event: d.event,
    reference: d.reference,
    status_code: a.status_code,
    error: a.error,
  };
}

export type SignMode = true | false | "wrong" | string;

export class EmulatorContext {
  readonly store: Store;
  readonly webhooks: WebhookDispatcher;
  config: RuntimeConfig;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  /** set by main.ts: closes (true) or reopens (false) the API listener */
  setDown: (down: boolean) => Promise<void> = async () => {};
  isDown: () => boolean = () => false;

  constructor(
    readonly secretKey: string,
    readonly domain: Domain,
    readonly publicUrl: string,
    readonly initialConfig: RuntimeConfig,
    readonly log: (line: string) => void,
  ) {
    this.store = new Store(domain);
    this.config = { ...initialConfig, retryMs: [...initialConfig.retryMs] };
    this.webhooks = new WebhookDispatcher(
      () => ({
        url: this.config.webhookUrl,
        retryMs: this.config.retryMs,
        timeoutMs: this.config.timeoutMs,
      }),
      log,
    );
  }

  /** Runs fn after ms unless reset()/close() happens first. */
  later(ms: number, fn: () => void | Promise<void>): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      void Promise.resolve().then(fn).catch((e) =>
        console.error(`paystack emulator: scheduled task failed: ${e}`)
      );
    }, ms);
    this.#timers.add(t);
  }

  cancelTimers(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  async reset(keepConfig = false): Promise<void> {
    this.cancelTimers();
    this.webhooks.clear();
    this.store.clear();
    if (!keepConfig) {
      this.config = {
        ...this.initialConfig,
        retryMs: [...this.initialConfig.retryMs],
      };
    }
    if (this.isDown()) await this.setDown(false);
  }

  close(): void {
    this.cancelTimers();
    this.webhooks.clear();
  }

  async signatureFor(body: string, sign: SignMode): Promise<string | null> {
    if (sign === false) return null;
    if (sign === true) return await signPaystackBody(this.secretKey, body);
    if (sign === "wrong") {
      return await signPaystackBody(this.secretKey + "_wrong", body);
    }
    return sign; // any other string is sent verbatim as the header value
  }

  /** Signs and queues a raw body. */
  async sendRaw(
    event: string,
    reference: string | null,
    body: string,
    source: string,
    sign: SignMode = true,
  ): Promise<{ delivery: Delivery; first: Promise<Attempt> }> {
    const signature = await this.signatureFor(body, sign);
    return this.webhooks.dispatch({
      event,
      reference,
      body,
      signature,
      source,
    });
  }

  async send(
    event: string,
    reference: string | null,
    data: unknown,
    source: string,
    sign: SignMode = true,
  ) {
    return await this.sendRaw(
      event,
      reference,
      eventBody(event, data),
      source,
      sign,
    );
  }

  async sendChargeSuccess(tx: Transaction, source = "charge") {
    return await this.send(
      "charge.success",
      tx.reference,
      transactionData(this.store, tx),
      source,
    );
  }

  async sendRefundEvent(
    tx: Transaction,
    r: Refund,
    status: RefundStatus,
    amount?: number | string,
  ) {
    this.store.setRefundStatus(tx, r, status);
    return await this.send(
      `refund.${status}`,
      tx.reference,
      refundEventData(tx, r, amount),
      "refund",
    );
  }

  async sendDisputeEvent(
    tx: Transaction,
    d: Dispute,
    action: "create" | "remind" | "resolve",
  ) {
    return await this.send(
      `charge.dispute.${action}`,
      tx.reference,
      disputeEventData(this.store, tx, d),
      "dispute",
    );
  }

  /** After POST /refund: refund.pending now, then refund.processed (or .failed) after a delay. */
  scheduleRefundOutcome(tx: Transaction, r: Refund): void {
    this.later(0, async () => {
      await this.sendRefundEvent(tx, r, "pending");
    });
    this.later(this.config.refundDelayMs, async () => {
      if (r.status !== "pending") return; // changed meanwhile (admin refund-event)
      await this.sendRefundEvent(tx, r, r.will_fail ? "failed" : "processed");
    });
  }
}
