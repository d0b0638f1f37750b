// The tiny subset of TOML that supabase/config.toml uses (sections and `key = value` lines with strings,
// booleans and numbers), read by the stand-ins that mirror hosted settings: verify_jwt per function (the
// functions host) and the Auth settings (confirmations, site URL). Not a TOML parser.

// STACK_SUPABASE_DIR lets the stand-ins be tried against a scratch supabase folder.
export const SUPABASE_DIR = Deno.env.get("STACK_SUPABASE_DIR") ?? new URL("../../supabase", import.meta.url).pathname;

export type TomlValue = string | boolean | number;

/** section name (e.g. "auth.email", "functions.checkout") -> key -> value; empty when the file is missing. */
export function configToml(path = `${SUPABASE_DIR}/config.toml`): Map<string, Map<string, TomlValue>> {
  const out = new Map<string, Map<string, TomlValue>>();
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch { /* no config: defaults */ }
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = head[1].trim().replace(/"([^"]+)"/g, "$1");
      continue;
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line);
    if (!kv) continue;
    const v = kv[2].trim();
    const value: TomlValue = v === "true" || v === "false" ? v === "true" : /^"(.*)"$/.test(v) ? v.slice(1, -1) : Number.isFinite(Number(v)) ? Number(v) : v;
    if (!out.has(section)) out.set(section, new Map());
    out.get(section)!.set(kv[1], value);
  }
  return out;
}
