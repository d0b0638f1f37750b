// The tiny subset of TOML that supabase/config.toml uses (sections and `key = value` lines with strings,
// booleans and numbers), read by the stand-ins that mirror hosted settings (verify_jwt per function for the
// functions host, the Auth settings) and by deploy:check. Not a TOML parser.

// STACK_SUPABASE_DIR lets the stand-ins be tried against a scratch supabase folder.
// A function, not a constant: deploy:check's parser is also loaded by tests under Node, where there is no Deno.
export const supabaseDir = () =>
  Deno.env.get("STACK_SUPABASE_DIR") ?? new URL("../../supabase", import.meta.url).pathname;

export type TomlValue = string | boolean | number;

export type TomlSections = Map<string, Map<string, TomlValue>>;

/** section name (e.g. "auth.email", "functions.checkout") -> key -> value; empty when the file is missing. */
export function configToml(path = `${supabaseDir()}/config.toml`): TomlSections {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch { /* no config: defaults */ }
  return parseConfigToml(text);
}

/** The sections of config.toml text (every section is listed, also one without keys). */
export function parseConfigToml(text: string): TomlSections {
  const out: TomlSections = new Map();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = head[1].trim().replace(/"([^"]+)"/g, "$1");
      if (!out.has(section)) out.set(section, new Map());
      continue;
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line);
    if (!kv) continue;
    const v = kv[2].trim();
    const value: TomlValue = v === "true" || v === "false"
      ? v === "true"
      : /^"(.*)"$/.test(v)
      ? v.slice(1, -1)
      : Number.isFinite(Number(v))
      ? Number(v)
      : v;
    if (!out.has(section)) out.set(section, new Map());
    out.get(section)!.set(kv[1], value);
  }
  return out;
}

/** verify_jwt per function ([functions.<name>]); undefined for a function section without it (hosted: true). */
export function verifyJwtFlags(sections: TomlSections): Map<string, boolean | undefined> {
  const out = new Map<string, boolean | undefined>();
  for (const [section, keys] of sections) {
    const fn = /^functions\.([A-Za-z0-9_-]+)$/.exec(section)?.[1];
    const v = keys.get("verify_jwt");
    if (fn) out.set(fn, typeof v === "boolean" ? v : undefined);
  }
  return out;
}
