// Optional CAPTCHA on sign-up and sign-in: Supabase Auth checks the token when the project enables CAPTCHA
// protection (https://supabase.com/docs/guides/auth/auth-captcha); the dashboard shows the provider's widget
// and passes its token as captchaToken. Only when config.json names a provider and a site key: otherwise no
// container is rendered and no script is loaded. The provider's script is loaded once, explicit rendering
// (https://docs.hcaptcha.com/configuration, https://developers.cloudflare.com/turnstile/get-started/client-side-rendering/).

export type CaptchaProvider = "hcaptcha" | "turnstile";
export const CAPTCHA_PROVIDERS: readonly CaptchaProvider[] = ["hcaptcha", "turnstile"];

const SCRIPTS: Record<CaptchaProvider, string> = {
  hcaptcha: "https://js.hcaptcha.com/1/api.js",
  turnstile: "https://challenges.cloudflare.com/turnstile/v0/api.js",
};
const ONLOAD = "litellmCreditsCaptchaLoaded";

interface WidgetApi {
  render(
    el: HTMLElement,
    opts: { sitekey: string; callback: (token: string) => void; "expired-callback": () => void },
  ): string;
  reset(id?: string): void;
}

let loading: Promise<WidgetApi> | undefined;

function loadApi(provider: CaptchaProvider): Promise<WidgetApi> {
  loading ??= new Promise<WidgetApi>((resolve, reject) => {
    const g = globalThis as unknown as Record<string, unknown>;
    g[ONLOAD] = () => resolve(g[provider] as WidgetApi);
    const script = document.createElement("script");
    script.src = `${SCRIPTS[provider]}?render=explicit&onload=${ONLOAD}`;
    script.async = true;
    script.onerror = () => {
      loading = undefined;
      reject(new Error("The CAPTCHA could not be loaded. Check your connection and reload the page."));
    };
    document.head.append(script);
  });
  return loading;
}

/** One widget in a form: its current token ("" until solved, and again after reset or expiry). */
export class Captcha {
  token = "";
  private api?: WidgetApi;
  private id?: string;

  constructor(private readonly provider: CaptchaProvider, private readonly siteKey: string) {}

  async mount(el: HTMLElement): Promise<void> {
    this.api = await loadApi(this.provider);
    this.id = this.api.render(el, {
      sitekey: this.siteKey,
      callback: (token) => (this.token = token),
      "expired-callback": () => (this.token = ""),
    });
  }

  /** A token is good for one request: ask for a fresh one after every attempt. */
  reset(): void {
    this.token = "";
    if (this.api && this.id !== undefined) this.api.reset(this.id);
  }
}
