// The API key card: reveal, copy, example calls, and key rotation.
//
// rotate-key answers 200 {state: "done", key_masked}, 202 {state: "waiting", resume_in_seconds} (call again
// then), 409 no_active_key | rotation_in_progress, 429 too_soon, 503 (LiteLLM down: the rotation is saved
// and ops-sweep finishes it). The state machine is in SQL, so calling again always continues the same
// rotation; the only care here is never to call again once it is done (that would start a second one), so
// before every repeat call my_key is read: a new active key means someone (ops-sweep) finished it.
import { FunctionsHttpError } from "@supabase/supabase-js";
import { cfg, gen, sb, sleep, state } from "./app.ts";
import { load } from "./dashboard.ts";
import { $, setHtml } from "./html.ts";
import { money } from "./money.ts";
import {
  type Key,
  KEY_COLS,
  keyCard,
  type Rotation,
  rotationBusy,
  rotationText,
  sentence,
  snippet,
  type SnippetLang,
} from "./views.ts";

export function renderKey() {
  setHtml($("#key"), keyCard(state.key, cfg.LITELLM_PUBLIC_URL, state.revealed, state.lang, state.rotation));
  tickRotation();
}

export function toggleReveal() {
  state.revealed = !state.revealed;
  renderKey();
}

export function setLang(lang: SnippetLang) {
  state.lang = lang;
  renderKey();
}

export async function copy(button: HTMLButtonElement, what: string) {
  const key = state.key?.key_value ?? "";
  const text = what === "base"
    ? cfg.LITELLM_PUBLIC_URL
    : what === "key"
    ? key
    : snippet(state.lang, cfg.LITELLM_PUBLIC_URL, key);
  let ok = true;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (insecure context, permission): copy through a hidden selection.
    const ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.append(ta);
    ta.select();
    ok = document.execCommand("copy");
    ta.remove();
  }
  const label = button.textContent;
  button.textContent = ok ? "Copied" : "Copy failed";
  $("#announce")!.textContent = ok
    ? `${what === "base" ? "Proxy URL" : what === "key" ? "Key" : "Example"} copied to the clipboard.`
    : "Copying failed: select the text and copy it by hand.";
  setTimeout(() => {
    if (button.isConnected) button.textContent = label;
  }, 2000);
}

// ---------------------------------------------------------------- rotation

interface RotateAnswer {
  state: "done" | "waiting";
  key_masked?: string;
  max_budget?: string; // decimal, as LiteLLM confirmed it
  resume_in_seconds?: number;
}
const WATCH_MS = 3 * 60_000;
const WATCH_EVERY_MS = 2_000;

export const rotatedAway = (key: Key | null, oldKeyId: string | null) =>
  !!key && key.key_id !== oldKeyId && key.status === "active";

function setRotation(r: Rotation | null, say = "") {
  state.rotation = r;
  renderKey();
  if (say) $("#announce")!.textContent = say;
}

export function dismissRotation() {
  state.rotation = null;
  renderKey();
  $<HTMLElement>('[data-action="rotate"]')?.focus();
}

export function tickRotation() {
  const el = $("[data-rotation-text]");
  const text = rotationText(state.rotation);
  if (el && el.textContent !== text) el.textContent = text;
}

export function confirmRotation() {
  if (rotationBusy(state.rotation) || !state.key) return;
  // After a stop (LiteLLM down) the user already confirmed: "Finish rotating" continues at once.
  if (state.rotation?.phase === "saved") return void rotate();
  const dialog = $<HTMLDialogElement>("#rotate-dialog")!;
  const remaining = state.account ? ` (${money(state.account.remaining)})` : "";
  $("[data-rotate-remaining]", dialog)!.textContent = remaining;
  dialog.returnValue = "";
  dialog.showModal();
}

/** A function's error answer: HTTP status and the JSON body's error code and message (0 = no answer). */
async function functionError(error: unknown): Promise<{ status: number; code: string; message: string }> {
  if (error instanceof FunctionsHttpError) {
    const res = error.context as Response;
    const body = await res.json().catch(() => null) as { error?: string; message?: string } | null;
    return { status: res.status, code: body?.error ?? "", message: body?.message ?? "" };
  }
  return { status: 0, code: "", message: error instanceof Error ? error.message : "" };
}

export async function rotate() {
  if (rotationBusy(state.rotation) || !state.key) return;
  const my = gen;
  const oldKeyId = state.rotation?.phase === "saved" ? state.rotation.oldKeyId : state.key.key_id;
  state.revealed = false; // the key on screen is about to stop working
  const running = () =>
    setRotation(
      { phase: "running", since: Date.now(), oldKeyId },
      "Rotating your key. This usually takes under a minute.",
    );
  running();
  $<HTMLElement>("#rotation-status")?.focus();
  /** Done by someone else meanwhile? (my_key shows a new active key.) */
  const finishedElsewhere = async () => {
    const { data } = await sb.from("my_key").select(KEY_COLS).maybeSingle();
    return my === gen && rotatedAway(data as unknown as Key | null, oldKeyId);
  };
  for (let call = 0;; call++) {
    const { data, error } = await sb.functions.invoke<RotateAnswer>("rotate-key", { body: {} });
    if (my !== gen) return;
    if (!error && data?.state === "done") return void rotationDone(my);
    if (!error && data?.state === "waiting") {
      const seconds = Math.min(600, Math.max(1, Math.ceil(Number(data.resume_in_seconds) || 5)));
      setRotation(
        { phase: "waiting", since: Date.now(), until: Date.now() + seconds * 1000, oldKeyId },
        `Rotating: waiting for LiteLLM to settle the old key's spend (${seconds} s).`,
      );
      await sleep(seconds * 1000);
      if (my !== gen) return;
      if (await finishedElsewhere()) return void rotationDone(my);
      if (my !== gen) return;
      running();
      continue;
    }
    const e = await functionError(error);
    if (my !== gen) return;
    // A repeat call refused: the rotation we were waiting for most likely finished elsewhere.
    if (call > 0 && (e.status === 429 || e.code === "no_active_key") && await finishedElsewhere()) {
      return void rotationDone(my);
    }
    if (my !== gen) return;
    if (e.code === "rotation_in_progress" || (call > 0 && e.status === 429)) return void watchRotation(my, oldKeyId);
    const fail = (message: string, phase: "saved" | "error" = "error") =>
      setRotation({ phase, since: Date.now(), oldKeyId, message });
    if (e.status === 401) {
      return fail("Your session has expired. Please sign out and sign in again, then rotate your key.");
    }
    if (e.status === 429) return fail("Your key was rotated less than a minute ago. Please try again in a minute.");
    if (e.code === "no_active_key") {
      return fail(
        "Your key cannot be rotated right now: it is not active yet. Please try again once it shows as active.",
      );
    }
    if (e.status === 503) {
      return fail(
        "LiteLLM is not answering right now. Your rotation is saved; it will finish automatically, or try again in a minute.",
        "saved",
      );
    }
    if (e.status === 0) {
      return fail(
        "We lost the connection to the server. If the rotation started, it is saved and finishes automatically within a few minutes; this page shows the new key when it does. Otherwise try again.",
        "saved",
      );
    }
    return fail(
      `The rotation stopped (${
        e.message ? sentence(e.message) : `error ${e.status}`
      }) It is saved and finishes automatically within a few minutes, or try again in a minute.`,
      "saved",
    );
  }
}

/** Another run owns the rotation (ops-sweep, another tab): wait for the new key to show up in my_key. */
async function watchRotation(my: number, oldKeyId: string | null) {
  setRotation({ phase: "watching", since: Date.now(), oldKeyId }, "Your key is being rotated; it finishes by itself.");
  const started = Date.now();
  while (my === gen && Date.now() - started < WATCH_MS) {
    await sleep(WATCH_EVERY_MS);
    if (my !== gen) return;
    const { data } = await sb.from("my_key").select(KEY_COLS).maybeSingle();
    if (my !== gen) return;
    if (rotatedAway(data as unknown as Key | null, oldKeyId)) return void rotationDone(my);
  }
  if (my === gen) {
    setRotation({
      phase: "saved",
      since: Date.now(),
      oldKeyId,
      message:
        "Your key is still being rotated. It finishes automatically; this page shows the new key when it does, or try again in a minute.",
    });
  }
}

/** The new key is active: read it (my_key) and the balance, and say so. */
export async function rotationDone(my = gen) {
  const oldKeyId = state.rotation?.oldKeyId ?? null;
  if (!rotatedAway(state.key, oldKeyId)) {
    await load();
    if (my !== gen) return;
  }
  const key = state.key;
  state.revealed = false;
  setRotation({
    phase: "done",
    since: Date.now(),
    oldKeyId,
    masked: key?.key_masked ?? "",
    remaining: state.account?.remaining,
  }, `Key rotated. Your new key ends in ${key?.key_masked.slice(-4) ?? ""}; the old key no longer works.`);
  $<HTMLElement>("#rotation-status")?.focus();
}
