// What every part of the dashboard shares: the runtime config, the supabase-js client, the signed-in user and
// the page state. The bindings are read live by the other modules and changed only through the functions here.
import type { SupabaseClient } from "@supabase/supabase-js";
import type { DayRow } from "./chart.ts";
import type { Config } from "./config.ts";
import type { Payment } from "./payments.ts";
import type { Price } from "./prices.ts";
import type { Account, Key, Lot, Rotation, SnippetLang } from "./views.ts";

export interface State {
  email: string;
  account: Account | null;
  lots: Lot[];
  key: Key | null;
  payments: Payment[];
  usage: DayRow[];
  prices: Price[];
  /** The currency the buy panel shows: the user's pick on this page, else their usual one (my_currency). */
  currency: string | null;
  revealed: boolean;
  lang: SnippetLang;
  buying: string | null;
  rotation: Rotation | null;
  loadError: string | null;
  loaded: boolean;
}
const fresh = (email = ""): State => ({
  email,
  account: null,
  lots: [],
  key: null,
  payments: [],
  usage: [],
  prices: [],
  currency: null,
  revealed: false,
  lang: "curl",
  buying: null,
  rotation: null,
  loadError: null,
  loaded: false,
});

export const root = document.getElementById("app")!;
export let cfg: Config;
export let sb: SupabaseClient;
export let userId: string | null = null;
export let gen = 0; // bumped on every sign-in/out: answers for a previous user are dropped
export let state = fresh();

export function connect(config: Config, client: SupabaseClient) {
  cfg = config;
  sb = client;
}

/** Another user (or none): a fresh state, and every answer still on its way for the previous one is dropped. */
export function switchUser(id: string | null, email: string) {
  userId = id;
  gen++;
  state = fresh(email);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
