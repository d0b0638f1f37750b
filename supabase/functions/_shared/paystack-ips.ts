// The addresses Paystack sends webhooks from, the same in test and live mode, as documented at
// https://paystack.com/docs/payments/webhooks/#ip-whitelisting ("IP whitelisting"). Used only when an
// operator turns the allow-list on (PAYSTACK_WEBHOOK_ALLOWED_IPS=paystack); the signature stays the real check.
export const PAYSTACK_WEBHOOK_IPS = ["52.31.139.75", "52.49.173.169", "52.214.14.220"] as const;
