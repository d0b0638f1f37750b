// In-memory state of the Paystack emulator: transactions, customers, refunds, disputes, and the
// shapes Paystack returns for them (verify data, refund data, dispute data).
// Test infrastructure only; never imported by product code.

export type Domain = "test" | "live";

/**
 * Currencies the emulated merchant account has enabled (NGN is its default), with Paystack's minimum
 * charge in subunits. Paystack takes every amount x100 ("subunit"), XOF and RWF included, although they
 * have no subunit in use: for those only whole units are accepted. Sources in the README.
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

export interface Customer {
  id: number;
  email: string;
  customer_code: string;
  created_at: string;
}

export interface Authorization {
  authorization_code: string;
  bin: string | null;
  last4: string | null;
  exp_month: string | null;
  exp_year: string | null;
  channel: string;
  card_type: string;
  bank: string;
  country_code: string;
  brand: string;
  reusable: boolean;
  signature: string | null;
  account_name: null;
}

export type RefundStatus =
  | "pending"
  | "processing"
  | "processed"
  | "failed"
  | "needs-attention";

export interface Refund {
  id: number;
  refund_reference: string;
  transaction_reference: string;
  amount: number;
  currency: string;
  status: RefundStatus;
  /** true when the refund was made against the "refund fails" test card */
  will_fail: boolean;
  created_at: string;
  updated_at: string;
}

export type DisputeResolution =
  | "merchant-accepted"
  | "auto-accepted"
  | "declined";

export interface Dispute {
  id: number;
  transaction_reference: string;
  refund_amount: number;
  currency: string;
  status: "awaiting-merchant-feedback" | "resolved";
  resolution: DisputeResolution | null;
  created_at: string;
  updated_at: string;
  resolved_at: string | null;
  due_at: string;
  history: { status: string; by: string; createdAt: string }[];
}

export interface Transaction {
  id: number;
  domain: Domain;
  reference: string;
  access_code: string;
  email: string;
  customer_id: number;
  amount: number;
  requested_amount: number;
  currency: string;
  status: string;
  callback_url: string | null;
  /** as Paystack returns it: the object sent, or "" when none was sent */
  metadata: unknown;
  channels: string[] | null;
  /** the channel of the last payment attempt ("card" until one is made, as Paystack reports it) */
  channel: string;
  created_at: string;
  paid_at: string | null;
  gateway_response: string | null;
  fees: number | null;
  authorization: Authorization | null;
  /** digits of the card used by the last payment attempt */
  card: string | null;
  refunds: Refund[];
  disputes: Dispute[];
}

// ---------------------------------------------------------------------------------------------
// Test cards (paystack.com/docs/payments/test-payments)

export interface TestCard {
  number: string;
  cvv: string;
  outcome: "success" | "failed";
  gateway_response: string;
  refund_fails: boolean;
}

export const TEST_CARDS: Record<string, TestCard> = {
  "4084084084084081": {
    number: "4084084084084081",
    cvv: "408",
    outcome: "success",
    gateway_response: "Successful",
    refund_fails: false,
  },
  "4084080000005408": {
    number: "4084080000005408",
    cvv: "001",
    outcome: "failed",
    gateway_response: "Declined",
    refund_fails: false,
  },
  "4084080000670037": {
    number: "4084080000670037",
    cvv: "787",
    outcome: "failed",
    gateway_response: "Insufficient Funds",
    refund_fails: false,
  },
  "4084080000671803": {
    number: "4084080000671803",
    cvv: "180",
    outcome: "success",
    gateway_response: "Successful",
    refund_fails: true,
  },
};

/** Short names accepted by the admin API in place of a card number. */
export const CARD_ALIASES: Record<string, string> = {
  success: "4084084084084081",
  declined: "4084080000005408",
  insufficient: "4084080000670037",
  insufficient_funds: "4084080000670037",
  "insufficient-funds": "4084080000670037",
  refund_fails: "4084080000671803",
  "refund-fails": "4084080000671803",
};

export const DEFAULT_TEST_CARD = "4084084084084081";

// ---------------------------------------------------------------------------------------------
// Small helpers

const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";

export function randomToken(length: number, alphabet = ALNUM): string {
  const bytes = new Uint8Array(length);
  crypto.getRandomValues(bytes);
  let out = "";
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

export function nowIso(): string {
  return new Date().toISOString();
}

export const REFERENCE_PATTERN = /^[A-Za-z0-9.=-]+$/;

/**
 * Merchant-side fees in subunits (deducted from settlement; the customer pays `amount`).
 * Approximates Paystack's published pricing: NGN 1.5% + 100 NGN (waived under 2,500 NGN),
 * capped at 2,000 NGN; USD 3.9%; GHS 1.95%; KES 2.9%; ZAR 2.9% + 1 ZAR. Integer arithmetic only.
 */
export function computeFees(amount: number, currency: string): number {
  const pct = (permille10k: number) =>
    Math.floor((amount * permille10k + 5000) / 10000);
  switch (currency) {
    case "NGN": {
      const fee = pct(150) + (amount >= 250000 ? 10000 : 0);
      return Math.min(fee, 200000);
    }
    case "USD":
      return pct(390);
    case "GHS":
      return pct(195);
    case "KES":
      return pct(290);
    case "ZAR":
      return pct(290) + 100;
    default:
      return pct(390);
  }
}

export function normalizeCardNumber(card: string): string {
  return card.replace(/[\s-]/g, "");
}

/** Parses "MM/YY", "MM/YYYY", "MM / YY" or "MMYY". Returns null when malformed. */
export function parseExpiry(
  expiry: string,
): { month: number; year: number } | null {
  const s = expiry.replace(/\s/g, "");
  const m = /^(\d{1,2})\/?(\d{2}|\d{4})$/.exec(s);
  if (!m) return null;
  const month = Number(m[1]);
  let year = Number(m[2]);
  if (m[2].length === 2) year += 2000;
  if (month < 1 || month > 12) return null;
  return { month, year };
}

export function expiryIsInFuture(
  exp: { month: number; year: number },
  now = new Date(),
): boolean {
  // A card is valid through the last day of its expiry month.
  const y = now.getUTCFullYear();
  const mo = now.getUTCMonth() + 1;
  return exp.year > y || (exp.year === y && exp.month >= mo);
}

// ---------------------------------------------------------------------------------------------
// The store

export class PaystackError extends Error {
  constructor(
    public httpStatus: number,
    message: string,
    public extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface InitializeInput {
  email: string;
  amount: number;
  currency: string;
  reference?: string;
  callback_url?: string | null;
  metadata?: unknown;
  channels?: string[] | null;
}

export interface ChargeInput {
  card: string;
  cvv?: string;
  expiry?: string;
}

export interface ChargeResult {
  status: "success" | "failed";
  gateway_response: string;
}

export class Store {
  transactions = new Map<string, Transaction>();
  byAccessCode = new Map<string, Transaction>();
  customers = new Map<string, Customer>();
  // Counters survive reset() so ids never repeat within one emulator process.
  #nextTxId = 4_100_000_001; // realistic: above 2^31, so consumers must store ids as bigint
  #nextCustomerId = 250_000_001;
  #nextRefundId = 9_000_001;
  #nextDisputeId = 700_001;

  constructor(public domain: Domain) {}

  clear(): void {
    this.transactions.clear();
    this.byAccessCode.clear();
    this.customers.clear();
  }

  customerFor(email: string): Customer {
    const key = email.toLowerCase();
    let c = this.customers.get(key);
    if (!c) {
      c = {
        id: this.#nextCustomerId++,
        email,
        customer_code: "CUS_" + randomToken(15),
        created_at: nowIso(),
      };
      this.customers.set(key, c);
    }
    return c;
  }

  get(reference: string): Transaction | undefined {
    return this.transactions.get(reference);
  }

  /** Finds a transaction by reference or by numeric id (as POST /refund accepts either). */
  find(idOrReference: string | number): Transaction | undefined {
    const s = String(idOrReference);
    const byRef = this.transactions.get(s);
    if (byRef) return byRef;
    if (/^\d+$/.test(s)) {
      const id = Number(s);
      for (const tx of this.transactions.values()) if (tx.id === id) return tx;
    }
    return undefined;
  }

  initialize(input: InitializeInput): Transaction {
    const reference = input.reference ?? randomToken(15);
    if (this.transactions.has(reference)) {
      throw new PaystackError(400, "Duplicate Transaction Reference", {
        type: "validation_error",
        code: "duplicate_reference",
      });
    }
    let access_code = randomToken(15);
    while (this.byAccessCode.has(access_code)) access_code = randomToken(15);
    const customer = this.customerFor(input.email);
    const tx: Transaction = {
      id: this.#nextTxId++,
      domain: this.domain,
      reference,
      access_code,
      email: input.email,
      customer_id: customer.id,
      amount: input.amount,
      requested_amount: input.amount,
      currency: input.currency,
      status: "abandoned",
      callback_url: input.callback_url ?? null,
      metadata: input.metadata === undefined || input.metadata === null
        ? ""
        : input.metadata,
      channels: input.channels ?? null,
      channel: "card",
      created_at: nowIso(),
      paid_at: null,
      gateway_response: "The transaction was not completed",
      fees: null,
      authorization: null,
      card: null,
      refunds: [],
      disputes: [],
    };
    this.transactions.set(reference, tx);
    this.byAccessCode.set(access_code, tx);
    return tx;
  }

  /**
   * One card payment attempt on the transaction. Throws PaystackError(400) for input that a
   * checkout form would reject (and for an already-paid transaction); otherwise records the
   * outcome on the transaction. A failed transaction may be retried with another card, as on
   * Paystack's checkout.
   */
  charge(tx: Transaction, input: ChargeInput): ChargeResult {
    this.#payable(tx, "card");
    const number = normalizeCardNumber(String(input.card ?? ""));
    if (!/^\d{12,19}$/.test(number)) {
      throw new PaystackError(400, "Invalid card number");
    }
    const known = TEST_CARDS[number];
    const cvv = String(input.cvv ?? known?.cvv ?? "").trim();
    if (!/^\d{3,4}$/.test(cvv)) throw new PaystackError(400, "Invalid CVV");
    const expiryText = input.expiry ?? defaultExpiry();
    const exp = parseExpiry(String(expiryText));
    if (!exp) throw new PaystackError(400, "Invalid expiry date");

    let result: ChargeResult;
    if (!expiryIsInFuture(exp)) {
      result = { status: "failed", gateway_response: "Expired Card" };
    } else if (!known) {
      result = { status: "failed", gateway_response: "Declined" };
    } else if (cvv !== known.cvv) {
      result = { status: "failed", gateway_response: "Declined" };
    } else {result = {
        status: known.outcome,
        gateway_response: known.gateway_response,
      };}

    tx.card = number;
    tx.channel = "card";
    tx.gateway_response = result.gateway_response;
    tx.authorization = {
      authorization_code: "AUTH_" + randomToken(10),
      bin: number.slice(0, 6),
      last4: number.slice(-4),
      exp_month: String(exp.month).padStart(2, "0"),
      exp_year: String(exp.year),
      channel: "card",
      card_type: "visa",
      bank: "TEST BANK",
      country_code: "NG",
      brand: "visa",
      reusable: result.status === "success",
      signature: "SIG_" + randomToken(20),
      account_name: null,
    };
    if (result.status === "success") {
      this.succeed(tx);
    } else {
      tx.status = "failed";
      tx.paid_at = null;
      tx.fees = null;
    }
    return result;
  }

  /** Refuses a payment on a paid or pending transaction, or by a channel initialize did not offer. */
  #payable(tx: Transaction, channel: string): void {
    if (["success", "reversed", "pending"].includes(tx.status)) {
      const paid = tx.status === "pending" ? "is awaiting payment" : "has already been paid";
      throw new PaystackError(400, `Transaction ${paid}`, { code: "already_paid" });
    }
    if (tx.channels?.length && !tx.channels.includes(channel)) {
      throw new PaystackError(400, `Channel ${channel} is not enabled for this transaction`);
    }
  }

  succeed(tx: Transaction): void {
    tx.status = "success";
    tx.gateway_response = "Successful";
    tx.paid_at = nowIso();
    tx.fees = computeFees(tx.amount, tx.currency);
  }

  /**
   * A payment by a channel other than card. Mobile money waits for the customer to approve it on
   * their phone: the transaction is `pending` until complete() or abandon(). The others succeed at once.
   */
  payBy(tx: Transaction, channel: string): void {
    this.#payable(tx, channel);
    tx.channel = channel;
    tx.card = null;
    tx.authorization = {
      authorization_code: "AUTH_" + randomToken(10),
      bin: null,
      last4: null,
      exp_month: null,
      exp_year: null,
      channel,
      card_type: "",
      bank: channel === "mobile_money" ? "MTN" : "TEST BANK",
      country_code: "NG",
      brand: channel,
      reusable: false,
      signature: null,
      account_name: null,
    };
    if (channel !== "mobile_money") return this.succeed(tx);
    tx.status = "pending";
    tx.gateway_response = "Pending";
  }

  /** The customer approved a pending mobile-money payment. */
  complete(tx: Transaction): void {
    if (tx.status !== "pending") throw new PaystackError(400, `Transaction is ${tx.status}, not pending`);
    this.succeed(tx);
  }

  /** The customer never approved: Paystack reports the transaction abandoned and sends no event. */
  abandon(tx: Transaction): void {
    if (tx.status !== "pending" && tx.status !== "abandoned") {
      throw new PaystackError(400, `Transaction is ${tx.status}; only an unpaid one can be abandoned`);
    }
    tx.status = "abandoned";
    tx.gateway_response = "The transaction was not completed";
  }

  /** Amount that can still be refunded: amount minus refunds that have not failed. */
  refundable(tx: Transaction): number {
    const committed = tx.refunds
      .filter((r) => r.status !== "failed")
      .reduce((sum, r) => sum + r.amount, 0);
    return Math.max(0, tx.amount - committed);
  }

  createRefund(
    tx: Transaction,
    amount: number,
    opts: { validate: boolean },
  ): Refund {
    if (opts.validate) {
      if (tx.status === "reversed") {
        throw new PaystackError(400, "Transaction has been fully reversed");
      }
      if (tx.status !== "success") {
        throw new PaystackError(
          400,
          "Cannot refund a transaction that has not been completed successfully",
        );
      }
      const remaining = this.refundable(tx);
      if (remaining === 0) {
        throw new PaystackError(400, "Transaction has been fully refunded");
      }
      if (!Number.isSafeInteger(amount) || amount <= 0) {
        throw new PaystackError(400, "Invalid refund amount");
      }
      if (amount > remaining) {
        throw new PaystackError(
          400,
          `Refund amount cannot be greater than the refundable amount of ${remaining}`,
        );
      }
    }
    const at = nowIso();
    const refund: Refund = {
      id: this.#nextRefundId++,
      refund_reference: "RFD_" + randomToken(12).toUpperCase(),
      transaction_reference: tx.reference,
      amount,
      currency: tx.currency,
      status: "pending",
      will_fail: TEST_CARDS[tx.card ?? ""]?.refund_fails ?? false,
      created_at: at,
      updated_at: at,
    };
    tx.refunds.push(refund);
    return refund;
  }

  setRefundStatus(tx: Transaction, refund: Refund, status: RefundStatus): void {
    refund.status = status;
    refund.updated_at = nowIso();
    if (status === "processed") {
      const processed = tx.refunds
        .filter((r) => r.status === "processed")
        .reduce((sum, r) => sum + r.amount, 0);
      // Paystack shows a fully refunded transaction as "reversed".
      if (processed >= tx.amount && tx.status === "success") {
        tx.status = "reversed";
      }
    }
  }

  createDispute(tx: Transaction, refundAmount: number): Dispute {
    const at = nowIso();
    const due = new Date(Date.now() + 2 * 24 * 3600 * 1000).toISOString();
    const d: Dispute = {
      id: this.#nextDisputeId++,
      transaction_reference: tx.reference,
      refund_amount: refundAmount,
      currency: tx.currency,
      status: "awaiting-merchant-feedback",
      resolution: null,
      created_at: at,
      updated_at: at,
      resolved_at: null,
      due_at: due,
      history: [{
        status: "awaiting-merchant-feedback",
        by: "emulator",
        createdAt: at,
      }],
    };
    tx.disputes.push(d);
    return d;
  }
}

function defaultExpiry(): string {
  const y = new Date().getUTCFullYear() + 3;
  return `12/${String(y % 100).padStart(2, "0")}`;
}

// ---------------------------------------------------------------------------------------------
// Response shapes

/** The `data` of GET /transaction/verify/:reference, also the `data` of charge.success. */
export function transactionData(
  store: Store,
  tx: Transaction,
): Record<string, unknown> {
  const customer =
    [...store.customers.values()].find((c) => c.id === tx.customer_id) ??
      store.customerFor(tx.email);
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
    fees: tx.fees,
    fees_split: null,
    authorization: tx.authorization ?? {},
    customer: {
      id: customer.id,
      first_name: null,
      last_name: null,
      email: customer.email,
      customer_code: customer.customer_code,
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

/** The `data` of POST /refund. */
export function refundApiData(
  store: Store,
  tx: Transaction,
  r: Refund,
): Record<string, unknown> {
  return {
    transaction: transactionData(store, tx),
    integration: 100001,
    deducted_amount: 0,
    channel: null,
    merchant_note: `Refund for transaction ${tx.reference}`,
    customer_note: `Refund for transaction ${tx.reference}`,
    status: r.status,
    refunded_by: "emulator@paystack.test",
    expected_at: new Date(Date.now() + 5 * 24 * 3600 * 1000).toISOString(),
    currency: r.currency,
    domain: tx.domain,
    amount: r.amount,
    fully_deducted: false,
    id: r.id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** One entry of GET /refund (the fields of Paystack's documented example, plus transaction_reference). */
export function refundListData(
  tx: Transaction,
  r: Refund,
): Record<string, unknown> {
  return {
    id: r.id,
    integration: 100001,
    domain: tx.domain,
    transaction: tx.id,
    transaction_reference: tx.reference,
    dispute: null,
    amount: r.amount,
    deducted_amount: r.status === "processed" ? r.amount : 0,
    currency: r.currency,
    channel: tx.channel,
    fully_deducted: r.status === "processed" ? 1 : 0,
    refunded_by: "emulator@paystack.test",
    refunded_at: r.status === "processed" ? r.updated_at : null,
    expected_at: new Date(Date.parse(r.created_at) + 5 * 24 * 3600 * 1000).toISOString(),
    settlement: null,
    customer_note: `Refund for transaction ${tx.reference}`,
    merchant_note: `Refund for transaction ${tx.reference}`,
    created_at: r.created_at,
    updated_at: r.updated_at,
    status: r.status,
  };
}

/** The `data` of refund.* webhooks. `amount` may be overridden (Paystack sometimes sends a string). */
export function refundEventData(
  tx: Transaction,
  r: Refund,
  amountOverride?: number | string,
): Record<string, unknown> {
  return {
    status: r.status,
    transaction_reference: tx.reference,
    refund_reference: r.refund_reference,
    amount: amountOverride ?? r.amount,
    currency: r.currency,
    processor: "emulator",
    customer: { first_name: null, last_name: null, email: tx.email },
    integration: 100001,
    domain: tx.domain,
    id: r.id,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/** The `data` of charge.dispute.* webhooks. */
export function disputeEventData(
  store: Store,
  tx: Transaction,
  d: Dispute,
): Record<string, unknown> {
  const customer = transactionData(store, tx).customer;
  return {
    id: d.id,
    refund_amount: d.refund_amount,
    currency: d.currency,
    status: d.status,
    resolution: d.resolution,
    domain: tx.domain,
    transaction: {
      id: tx.id,
      domain: tx.domain,
      status: tx.status,
      reference: tx.reference,
      amount: tx.amount,
      currency: tx.currency,
      paid_at: tx.paid_at,
      created_at: tx.created_at,
      channel: tx.channel,
      metadata: tx.metadata,
    },
    transaction_reference: null,
    category: "chargeback",
    customer,
    bin: tx.authorization?.bin ?? null,
    last4: tx.authorization?.last4 ?? null,
    dueAt: d.due_at,
    resolvedAt: d.resolved_at,
    evidence: null,
    attachments: null,
    note: null,
    history: d.history,
    messages: [],
    source: "cbm",
    createdAt: d.created_at,
    updatedAt: d.updated_at,
  };
}
