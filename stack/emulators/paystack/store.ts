// In-memory state of the Paystack emulator (transactions, refunds, disputes) and the shapes Paystack
// returns for them. Facts and their sources are in the README.

import { PaystackError } from "./http.ts";

/**
 * Currencies the emulated merchant account has enabled (NGN is its default), with Paystack's minimum
 * charge in subunits. Paystack takes every amount x100, XOF and RWF included although they have no
 * subunit in use: for those only whole units are accepted.
 */
export const CURRENCIES: Record<string, { min: number; whole?: boolean }> = {
  NGN: { min: 5000 },
  USD: { min: 200 },
  GHS: { min: 10 },
  KES: { min: 300 },
  ZAR: { min: 100 },
  XOF: { min: 100, whole: true },
  EGP: { min: 1 },
  RWF: { min: 100, whole: true },
};
export const DEFAULT_CURRENCY = "NGN";
/** The payment channels initialize accepts in `channels` (and /admin/pay in `channel`). */
export const CHANNELS = ["card", "bank", "ussd", "mobile_money", "bank_transfer", "qr"];

/** What a later charge_authorization of a card's authorization does (README, "Charging a saved card"). */
export type Recharge = "success" | "declined" | "insufficient_funds" | "pending";

/**
 * Paystack's test cards (https://paystack.com/docs/payments/test-payments/), any future expiry, plus the
 * emulator's own cards that pay at checkout and then behave differently when charged again.
 */
export const TEST_CARDS: Record<string, { cvv: string; ok: boolean; response: string; recharge?: Recharge }> = {
  "4084084084084081": { cvv: "408", ok: true, response: "Successful", recharge: "success" },
  "4084080000005408": { cvv: "001", ok: false, response: "Declined" },
  "4084080000000409": { cvv: "408", ok: true, response: "Successful", recharge: "declined" },
  "4084080000000508": { cvv: "408", ok: true, response: "Successful", recharge: "insufficient_funds" },
  "4084080000000607": { cvv: "408", ok: true, response: "Successful", recharge: "pending" },
};
const RECHARGE_RESPONSE: Record<Recharge, { status: string; response: string }> = {
  success: { status: "success", response: "Approved" },
  declined: { status: "failed", response: "Declined" },
  insufficient_funds: { status: "failed", response: "Insufficient Funds" },
  pending: { status: "pending", response: "Transaction is being processed" },
};

export type Domain = "test" | "live";
type Json = Record<string, unknown>;

export interface Refund {
  id: number;
  refund_reference: string;
  amount: number;
  currency: string;
  status: "pending" | "processed";
  created_at: string;
  updated_at: string;
}

export interface Dispute {
  id: number;
  status: "awaiting-merchant-feedback" | "resolved";
  resolution: string | null;
  created_at: string;
  updated_at: string;
}

export interface Transaction {
  id: number;
  domain: Domain;
  reference: string;
  access_code: string;
  email: string;
  customer: { id: number; customer_code: string };
  amount: number;
  requested_amount: number;
  currency: string;
  status: string;
  callback_url: string | null;
  /** as Paystack returns it: the object sent, or "" when none was sent */
  metadata: unknown;
  /** what initialize offered (null: all) */
  channels: string[] | null;
  /** the channel of the last payment attempt ("card" until one is made, as Paystack reports it) */
  channel: string;
  created_at: string;
  paid_at: string | null;
  gateway_response: string;
  authorization: Json | null;
  refunds: Refund[];
  disputes: Dispute[];
}

export interface InitializeInput {
  email: string;
  amount: number;
  currency: string;
  reference: string | null;
  callback_url: string | null;
  metadata: unknown;
  channels: string[] | null;
}

const now = () => new Date().toISOString();

export function randomToken(length: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(length)), (b) => alphabet[b % alphabet.length]).join("");
}

/** "MM/YY" or "MM/YYYY" (a slash and spaces optional) -> whether it is this month or later; null if malformed. */
function notExpired(expiry: string): boolean | null {
  const m = /^(\d{1,2})\/?(\d{2}|\d{4})$/.exec(expiry.replace(/\s/g, ""));
  const month = Number(m?.[1]);
  if (!m || month < 1 || month > 12) return null;
  const year = Number(m[2]) + (m[2].length === 2 ? 2000 : 0);
  const today = new Date();
  return year * 12 + month >= today.getUTCFullYear() * 12 + today.getUTCMonth() + 1;
}

/** A card authorization a successful payment created: its customer and how charging it again behaves. */
interface SavedAuthorization {
  authorization: Json;
  email: string;
  recharge: Recharge;
}

export class Store {
  transactions = new Map<string, Transaction>();
  #authorizations = new Map<string, SavedAuthorization>();
  byAccessCode = new Map<string, Transaction>();
  #customers = new Map<string, { id: number; customer_code: string }>();
  #ids = { tx: 4_100_000_001, customer: 250_000_001, refund: 9_000_001, dispute: 700_001 }; // tx ids above 2^31

  constructor(public domain: Domain) {}

  /** By reference, or by numeric id as POST /refund also accepts. */
  find(idOrReference: unknown): Transaction | undefined {
    const s = String(idOrReference);
    return this.transactions.get(s) ?? [...this.transactions.values()].find((tx) => String(tx.id) === s);
  }

  initialize(input: InitializeInput): Transaction {
    const reference = input.reference ?? randomToken(15);
    if (this.transactions.has(reference)) {
      throw new PaystackError(400, "Duplicate Transaction Reference", {
        type: "validation_error",
        code: "duplicate_reference",
      });
    }
    const email = input.email.toLowerCase();
    if (!this.#customers.has(email)) {
      this.#customers.set(email, { id: this.#ids.customer++, customer_code: "CUS_" + randomToken(15) });
    }
    const tx: Transaction = {
      ...input,
      id: this.#ids.tx++,
      domain: this.domain,
      reference,
      access_code: randomToken(15),
      customer: this.#customers.get(email)!,
      requested_amount: input.amount,
      status: "abandoned",
      metadata: input.metadata ?? "",
      channel: "card",
      created_at: now(),
      paid_at: null,
      gateway_response: "The transaction was not completed",
      authorization: null,
      refunds: [],
      disputes: [],
    };
    this.transactions.set(reference, tx);
    this.byAccessCode.set(tx.access_code, tx);
    return tx;
  }

  /** Refuses a payment on a paid or pending transaction, or by a channel initialize did not offer. */
  #payable(tx: Transaction, channel: string): void {
    if (["success", "reversed", "pending"].includes(tx.status)) {
      const why = tx.status === "pending" ? "is awaiting payment" : "has already been paid";
      throw new PaystackError(400, `Transaction ${why}`, { code: "already_paid" });
    }
    if (tx.channels?.length && !tx.channels.includes(channel)) {
      throw new PaystackError(400, `Channel ${channel} is not enabled for this transaction`);
    }
  }

  #succeed(tx: Transaction, response: string): void {
    tx.status = "success";
    tx.gateway_response = response;
    tx.paid_at = now();
  }

  /**
   * One card payment attempt: 400 for input a checkout form would reject; otherwise the outcome is
   * recorded. A failed transaction may be retried with another card, as on Paystack's checkout.
   */
  charge(tx: Transaction, card: string, cvv?: string, expiry?: string): void {
    this.#payable(tx, "card");
    const number = card.replace(/[\s-]/g, "");
    if (!/^\d{12,19}$/.test(number)) throw new PaystackError(400, "Invalid card number");
    const known = TEST_CARDS[number];
    const code = (cvv ?? known?.cvv ?? "").trim();
    if (!/^\d{3,4}$/.test(code)) throw new PaystackError(400, "Invalid CVV");
    const valid = expiry === undefined ? true : notExpired(expiry);
    if (valid === null) throw new PaystackError(400, "Invalid expiry date");
    const response = !valid ? "Expired Card" : known && code === known.cvv ? known.response : "Declined";
    tx.channel = "card";
    tx.authorization = this.#authorization("card", { bin: number.slice(0, 6), last4: number.slice(-4) });
    if (valid && known?.ok && code === known.cvv) {
      const recharge = known.recharge ?? "success";
      this.#authorizations.set(String(tx.authorization!.authorization_code), {
        authorization: tx.authorization,
        email: tx.email,
        recharge,
      });
      return this.#succeed(tx, response);
    }
    tx.status = "failed";
    tx.gateway_response = response;
  }

  /**
   * A payment by another channel. Mobile money waits for the customer to approve it on their phone:
   * `pending` until complete() or abandon(). The others succeed at once.
   */
  payBy(tx: Transaction, channel: string): void {
    this.#payable(tx, channel);
    tx.channel = channel;
    tx.authorization = this.#authorization(channel, { bin: null, last4: null });
    if (channel !== "mobile_money") return this.#succeed(tx, "Approved");
    tx.status = "pending";
    tx.gateway_response = "Pending";
  }

  complete(tx: Transaction): void {
    if (tx.status !== "pending") throw new PaystackError(400, `Transaction is ${tx.status}, not pending`);
    this.#succeed(tx, "Approved");
  }

  /** The customer never approved: Paystack reports the transaction abandoned and sends no event. */
  abandon(tx: Transaction): void {
    if (tx.status !== "pending" && tx.status !== "abandoned") {
      throw new PaystackError(400, `Transaction is ${tx.status}; only an unpaid one can be abandoned`);
    }
    tx.status = "abandoned";
    tx.gateway_response = "The transaction was not completed";
  }

  /**
   * POST /transaction/charge_authorization: a new transaction on a saved authorization, decided at once
   * (success or failed) or left pending (the card's `recharge`). Refusals (400) create nothing: an unknown
   * code, a non-reusable authorization, another customer's email, a reference already used.
   */
  chargeAuthorization(code: string, input: Omit<InitializeInput, "callback_url" | "channels">): Transaction {
    const saved = this.#authorizations.get(code);
    const anyTx = saved
      ? undefined
      : [...this.transactions.values()].find((t) => t.authorization?.authorization_code === code);
    if (anyTx) throw new PaystackError(400, "This authorization is not reusable", { code: "invalid_authorization" });
    if (!saved) throw new PaystackError(400, "Invalid Authorization Code", { code: "invalid_authorization" });
    if (saved.email !== input.email.toLowerCase()) {
      throw new PaystackError(400, "Email does not match Authorization code", { code: "invalid_authorization" });
    }
    const tx = this.initialize({ ...input, callback_url: null, channels: ["card"] });
    tx.authorization = saved.authorization;
    const outcome = RECHARGE_RESPONSE[saved.recharge];
    if (outcome.status === "success") this.#succeed(tx, outcome.response);
    else Object.assign(tx, { status: outcome.status, gateway_response: outcome.response });
    return tx;
  }

  #authorization(channel: string, card: { bin: string | null; last4: string | null }): Json {
    return {
      authorization_code: "AUTH_" + randomToken(10),
      ...card,
      exp_month: card.bin ? "12" : null,
      exp_year: card.bin ? "2030" : null,
      channel,
      card_type: channel === "card" ? "visa" : "",
      bank: "TEST BANK",
      country_code: "NG",
      brand: channel === "card" ? "visa" : channel,
      reusable: channel === "card",
      signature: channel === "card" ? "SIG_" + randomToken(20) : null,
      account_name: null,
    };
  }

  /** A refund of `amount` (default: what is left) in the charged currency, validated as Paystack does. */
  refund(tx: Transaction, amount?: number): Refund {
    if (tx.status === "reversed") throw new PaystackError(400, "Transaction has been fully reversed");
    if (tx.status !== "success") {
      throw new PaystackError(400, "Cannot refund a transaction that has not been completed successfully");
    }
    const left = tx.amount - tx.refunds.reduce((sum, r) => sum + r.amount, 0);
    if (left <= 0) throw new PaystackError(400, "Transaction has been fully refunded");
    if (amount !== undefined && amount <= 0) throw new PaystackError(400, "Invalid refund amount");
    if ((amount ?? left) > left) {
      throw new PaystackError(400, `Refund amount cannot be greater than the refundable amount of ${left}`);
    }
    const at = now();
    const refund: Refund = {
      id: this.#ids.refund++,
      refund_reference: "RFD_" + randomToken(12).toUpperCase(),
      amount: amount ?? left,
      currency: tx.currency,
      status: "pending",
      created_at: at,
      updated_at: at,
    };
    tx.refunds.push(refund);
    return refund;
  }

  processed(tx: Transaction, r: Refund): void {
    r.status = "processed";
    r.updated_at = now();
    // Paystack shows a fully refunded transaction as "reversed".
    const done = tx.refunds.filter((x) => x.status === "processed").reduce((sum, x) => sum + x.amount, 0);
    if (done >= tx.amount && tx.status === "success") tx.status = "reversed";
  }

  /** create opens a dispute on a paid transaction; resolve closes the last open one. */
  dispute(tx: Transaction, action: "create" | "resolve", resolution?: string): Dispute {
    const at = now();
    if (action === "create") {
      if (tx.status !== "success" && tx.status !== "reversed") {
        throw new PaystackError(400, "Only a paid transaction can be disputed");
      }
      const d: Dispute = {
        id: this.#ids.dispute++,
        status: "awaiting-merchant-feedback",
        resolution: null,
        created_at: at,
        updated_at: at,
      };
      tx.disputes.push(d);
      return d;
    }
    const d = tx.disputes.findLast((x) => x.status !== "resolved");
    if (!d) throw new PaystackError(400, `No open dispute on ${tx.reference}`);
    Object.assign(d, { status: "resolved", resolution, updated_at: at });
    // The customer got the money back: Paystack marks the transaction reversed.
    if (resolution !== "declined" && tx.status === "success") tx.status = "reversed";
    return d;
  }
}

// ---------------------------------------------------------------------------------------------
// Response shapes (fields as in Paystack's API reference, https://paystack.com/docs/api/)

/** The `data` of POST /transaction/charge_authorization: the fields its API reference documents. */
export function chargeData(tx: Transaction): Json {
  const t = transactionData(tx);
  const keys = [
    "amount",
    "currency",
    "transaction_date",
    "status",
    "reference",
    "domain",
    "metadata",
    "gateway_response",
    "message",
    "channel",
    "ip_address",
    "log",
    "fees",
    "authorization",
    "customer",
    "plan",
    "id",
  ];
  return Object.fromEntries(keys.map((k) => [k, t[k]]));
}

/** The `data` of GET /transaction/verify/:reference, and of charge.success. */
export function transactionData(tx: Transaction): Json {
  return {
    id: tx.id,
    domain: tx.domain,
    status: tx.status,
    reference: tx.reference,
    receipt_number: null,
    amount: tx.amount,
    message: null,
    gateway_response: tx.gateway_response,
    paid_at: tx.paid_at,
    created_at: tx.created_at,
    channel: tx.channel,
    currency: tx.currency,
    ip_address: "127.0.0.1",
    metadata: tx.metadata,
    log: null,
    fees: tx.paid_at ? Math.round(tx.amount * 0.015) : null, // a flat 1.5%: only the field's shape matters here
    fees_split: null,
    authorization: tx.authorization ?? {},
    customer: {
      ...tx.customer,
      first_name: null,
      last_name: null,
      email: tx.email,
      phone: null,
      metadata: null,
      risk_action: "default",
      international_format_phone: null,
    },
    plan: null,
    split: {},
    order_id: null,
    paidAt: tx.paid_at,
    createdAt: tx.created_at,
    requested_amount: tx.requested_amount,
    pos_transaction_data: null,
    source: null,
    fees_breakdown: null,
    connect: null,
    transaction_date: tx.created_at,
    plan_object: {},
    subaccount: {},
  };
}

/** A refund as POST /refund (`transaction` in full) and GET /refund (`transaction` as its id) show it. */
export function refundData(tx: Transaction, r: Refund, listed: boolean): Json {
  const done = r.status === "processed";
  return {
    id: r.id,
    integration: 100001,
    domain: tx.domain,
    transaction: listed ? tx.id : transactionData(tx),
    transaction_reference: tx.reference,
    dispute: null,
    amount: r.amount,
    deducted_amount: done ? r.amount : 0,
    currency: r.currency,
    channel: tx.channel,
    fully_deducted: done ? 1 : 0,
    refunded_by: "emulator@paystack.test",
    refunded_at: done ? r.updated_at : null,
    expected_at: new Date(Date.parse(r.created_at) + 5 * 86_400_000).toISOString(),
    settlement: null,
    customer_note: `Refund for transaction ${tx.reference}`,
    merchant_note: `Refund for transaction ${tx.reference}`,
    created_at: r.created_at,
    updated_at: r.updated_at,
    status: r.status,
  };
}

/** The `data` of refund.* events. */
export function refundEventData(tx: Transaction, r: Refund): Json {
  const { id, refund_reference, amount, currency, status, created_at, updated_at } = r;
  return {
    status,
    transaction_reference: tx.reference,
    refund_reference,
    amount,
    currency,
    processor: "emulator",
    customer: { first_name: null, last_name: null, email: tx.email },
    integration: 100001,
    domain: tx.domain,
    id,
    created_at,
    updated_at,
  };
}

/** The `data` of charge.dispute.* events. */
export function disputeEventData(tx: Transaction, d: Dispute): Json {
  const { id, domain, status, reference, amount, currency, paid_at, created_at, channel, metadata } = tx;
  return {
    id: d.id,
    refund_amount: tx.amount,
    currency: tx.currency,
    status: d.status,
    resolution: d.resolution,
    domain: tx.domain,
    transaction: { id, domain, status, reference, amount, currency, paid_at, created_at, channel, metadata },
    transaction_reference: null,
    category: "chargeback",
    customer: transactionData(tx).customer,
    createdAt: d.created_at,
    updatedAt: d.updated_at,
  };
}
