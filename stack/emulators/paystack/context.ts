// One emulator instance: its key, store, webhook settings, and the events state changes send.

import { type Dispute, disputeEventData, refundEventData, Store, type Transaction, transactionData } from "./store.ts";
import { type Attempt, signPaystackBody, WebhookDispatcher } from "./webhooks.ts";

/** Delay between POST /refund and its refund.processed event. */
const REFUND_DELAY_MS = 200;

export class EmulatorContext {
  readonly store: Store;
  readonly webhooks: WebhookDispatcher;
  /** set by main.ts: closes (true) or reopens (false) the API listener */
  setDown: (down: boolean) => Promise<void> = async () => {};
  isDown = () => false;

  constructor(
    readonly secretKey: string,
    readonly publicUrl: string,
    public config: { webhookUrl: string; retryMs: number[] },
  ) {
    this.store = new Store(secretKey.startsWith("sk_live_") ? "live" : "test");
    this.webhooks = new WebhookDispatcher(() => ({ url: this.config.webhookUrl, retryMs: this.config.retryMs }));
  }

  /** Signs {event, data} and sends it; resolves with the first attempt. */
  async send(event: string, reference: string | null, data: unknown): Promise<Attempt> {
    const body = JSON.stringify({ event, data });
    return await this.webhooks.dispatch({
      event,
      reference,
      body,
      signature: await signPaystackBody(this.secretKey, body),
    });
  }

  chargeSuccess(tx: Transaction): Promise<Attempt> {
    return this.send("charge.success", tx.reference, transactionData(tx));
  }

  dispute(tx: Transaction, d: Dispute, action: string): Promise<Attempt> {
    return this.send(`charge.dispute.${action}`, tx.reference, disputeEventData(tx, d));
  }

  /** A refund's events: refund.pending at once, refund.processed a moment later, as Paystack queues them. */
  refund(tx: Transaction, amount?: number) {
    const r = this.store.refund(tx, amount);
    const event = () => this.send(`refund.${r.status}`, tx.reference, refundEventData(tx, r));
    setTimeout(event, 0);
    setTimeout(() => (this.store.processed(tx, r), event()), REFUND_DELAY_MS);
    return r;
  }
}
