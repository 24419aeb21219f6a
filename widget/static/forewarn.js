/* Forewarn banner: <forewarn-flag subject-kind="customer" subject-ref="..." api="https://...">.
 * A dependency-free custom element. The host page sets element.launchToken (never in a URL);
 * the element trades it at /auth/launch for a bearer token kept in memory only, and fires
 * "forewarn-token-needed" when it needs a new one. Any failure shows the error state, never
 * "no flag". Flag details are fetched only after the user states a reason, live only inside
 * this element's shadow root, and are dropped when the dialog closes. */
(() => {
  "use strict";
  if (window.customElements.get("forewarn-flag")) return;

  const script = document.currentScript;
  const SCRIPT_ORIGIN = script && script.src ? new URL(script.src).origin : window.location.origin;
  const TIMEOUT_MS = 10000;
  // The host's launch token comes from a script on the same page: two seconds is ample, and
  // staff must not wait longer to learn that the status cannot be shown.
  const TOKEN_WAIT_MS = 2000;
  // A banner on the page is confirmed again this often (attribute refresh-seconds; 0: never).
  const REFRESH_SECONDS = 60;
  const TEXT = {
    loading: "Checking for warning flags…",
    none: "No warning flag on this record",
    amber: "Amber warning flag",
    red: "Red warning flag",
    error: "Flag status unavailable: do not assume there is no warning",
  };
  const SVG = {
    loading: '<circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2.5" stroke-dasharray="4 3"/>',
    none: '<circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" stroke-width="2"/><path d="M7 12.5l3.2 3.2L17 9" fill="none" stroke="currentColor" stroke-width="2.5"/>',
    amber: '<path d="M12 2.5L22.5 21h-21z" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"/><path d="M12 9v6M12 17.2v1.8" stroke="currentColor" stroke-width="2.5"/>',
    red: '<path d="M8 2h8l6 6v8l-6 6H8l-6-6V8z" fill="currentColor"/><path d="M12 6.5v7.5M12 16.5v2" stroke="#fff" stroke-width="2.5"/>',
    error: '<circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" stroke-width="2"/><path d="M8 8l8 8M16 8l-8 8" stroke="currentColor" stroke-width="2.5"/>',
    appeal: '<path d="M12 3v18M5 7h14M7 7l-3 7h6zM17 7l-3 7h6zM8 21h8" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/>',
  };
  const CSS = `
:host { display: block; font: 1rem/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b; }
* { box-sizing: border-box; }
.banner { border: 2px solid #595959; border-left-width: .5rem; border-radius: 4px; padding: .5rem .75rem; background: #fff; overflow-wrap: anywhere; }
.head { display: flex; gap: .5rem; align-items: flex-start; }
.icon { flex: none; width: 1.5rem; height: 1.5rem; margin-top: .05rem; }
.small { width: 1.1rem; height: 1.1rem; vertical-align: -.15rem; margin-right: .25rem; }
.title { font-weight: 700; margin: 0; font-size: 1.0625rem; }
p { margin: .25rem 0 0; }
.none { border-color: #2e6b34; background: #eef7ee; color: #143a18; }
.amber { border-color: #8a5a00; background: #fff5dc; color: #3b2a00; }
.red { border-color: #a4001d; background: #fdecee; color: #5c0011; }
.error { border-color: #1b1b1b; border-style: dashed dashed dashed solid; background: #f2f2f2; color: #1b1b1b; }
.loading { border-color: #595959; color: #333; }
ul.flags { list-style: none; margin: .5rem 0 0; padding: 0; }
ul.flags > li { border-top: 1px solid currentColor; padding: .5rem 0 0; margin-top: .5rem; }
.label { font-weight: 700; }
.appeal { font-weight: 700; }
.stale { font-weight: 700; margin: .25rem 0 0; }
button { font: inherit; min-height: 2.25rem; padding: .3rem .9rem; margin-top: .5rem; border: 2px solid #1b1b1b; border-radius: 4px; background: #fff; color: #1b1b1b; cursor: pointer; }
button.primary { background: #12344d; border-color: #12344d; color: #fff; }
button:hover { text-decoration: underline; }
:focus-visible { outline: 3px solid #1d4ed8; outline-offset: 2px; }
dialog { width: min(36rem, calc(100vw - 1rem)); max-height: calc(100vh - 1rem); overflow: auto; border: 2px solid #1b1b1b; border-radius: 6px; padding: 1rem; color: #1b1b1b; background: #fff; overflow-wrap: anywhere; }
dialog::backdrop { background: rgb(0 0 0 / .55); }
h2 { font-size: 1.25rem; margin: 0 0 .5rem; }
h3 { font-size: 1.0625rem; margin: 1rem 0 .25rem; }
fieldset { border: 1px solid #595959; margin: .75rem 0; padding: .5rem .75rem; }
legend { font-weight: 700; padding: 0 .25rem; }
.choice { display: flex; gap: .5rem; align-items: center; margin: .25rem 0; }
.choice input { width: 1.25rem; height: 1.25rem; margin: 0; }
label.field { display: block; font-weight: 700; margin-top: .75rem; }
.hint { color: #404040; margin: 0; }
textarea, input[type=date] { font: inherit; display: block; width: 100%; margin-top: .25rem; padding: .35rem; border: 2px solid #595959; border-radius: 4px; color: #1b1b1b; background: #fff; }
textarea { min-height: 5rem; resize: vertical; }
[aria-invalid=true] { border-color: #a4001d; }
.problem { color: #a4001d; font-weight: 700; }
.problem:empty { display: none; }
.recorded { border-left: .35rem solid #12344d; padding-left: .5rem; }
dl { margin: .5rem 0 0; }
dt { font-weight: 700; margin-top: .5rem; }
dd { margin: 0; white-space: pre-line; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
`;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function icon(name, cls) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", cls || "icon");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.innerHTML = SVG[name];
    return svg;
  }

  function longDate(iso) {
    const [y, m, d] = String(iso).slice(0, 10).split("-").map(Number);
    if (!y || !m || !d) return String(iso);
    return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", {
      day: "numeric", month: "long", year: "numeric", timeZone: "UTC",
    });
  }

  // Two texts that differ only in case, spacing and punctuation say the same thing.
  function sameText(a, b) {
    const plain = (text) => String(text).toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
    return plain(a) === plain(b);
  }

  class ApiError extends Error {
    constructor(status, detail, errors) {
      super(detail || `HTTP ${status}`);
      this.status = status;
      this.errors = errors || [];
    }
  }

  let sheet = null;
  function styles() {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    }
    return sheet;
  }

  let uid = 0;

  class ForewarnFlag extends HTMLElement {
    static get observedAttributes() { return ["subject-kind", "subject-ref", "api", "refresh-seconds"]; }

    #launch = null;
    #signingIn = null;
    #access = null;
    #accessUntil = 0;
    #run = 0;
    #shownRed = false;
    #tokenTimer = null;
    #refreshTimer = null;
    #confirmed = null;
    #reasons = null;
    #grantUntil = 0;
    #flag = null;
    #opener = null;
    #root;
    #status;
    #alert;
    #body;
    #dialog;
    #id = ++uid;

    constructor() {
      super();
      this.#root = this.attachShadow({ mode: "open" });
      this.#root.adoptedStyleSheets = [styles()];
      this.#status = el("div", { role: "status" });
      this.#alert = el("div", { role: "alert" });
      this.#body = el("div");
      this.#dialog = el("dialog", {
        role: "dialog", "aria-modal": "true", "aria-labelledby": `fw-${this.#id}-title`,
        onkeydown: (event) => this.#trapFocus(event),
        oncancel: (event) => { event.preventDefault(); this.#closeDialog(); },
      });
      this.#root.append(
        el("div", { class: "banner loading", part: "banner" }, this.#status, this.#alert, this.#body),
        this.#dialog,
      );
    }

    /** The host's launch token: exchanged once, then forgotten. Write-only. */
    set launchToken(token) {
      if (typeof token !== "string" || !token) return;
      this.#launch = token;
      this.#access = null;
      if (this.isConnected) this.#load();
    }

    get launchToken() { return undefined; }

    /** A bearer token the embedding page already holds (the embed page's session). Write-only. */
    set accessToken(token) {
      if (typeof token !== "string" || !token) return;
      this.#access = token;
      this.#accessUntil = Infinity;
      if (this.isConnected) this.#load();
    }

    get accessToken() { return undefined; }

    connectedCallback() {
      // A token set before this script upgraded the element sits on the instance: take it.
      const early = (name) => {
        if (!Object.prototype.hasOwnProperty.call(this, name)) return null;
        const token = this[name];
        delete this[name];
        return typeof token === "string" && token ? token : null;
      };
      this.#launch = early("launchToken") || this.#launch;
      const access = early("accessToken");
      if (access) {
        this.#access = access;
        this.#accessUntil = Infinity;
      }
      this.#onVisible ||= () => { if (document.visibilityState === "visible") this.#refresh(); };
      document.addEventListener("visibilitychange", this.#onVisible);
      this.#load();
    }

    disconnectedCallback() {
      clearTimeout(this.#refreshTimer);
      document.removeEventListener("visibilitychange", this.#onVisible);
    }

    #onVisible = null;

    attributeChangedCallback(name, before, after) {
      if (before !== after && this.isConnected && before !== null) {
        if (name !== "refresh-seconds") {
          this.#grantUntil = 0;
          this.#confirmed = null;
        }
        this.#load();
      }
    }

    /** Confirm the banner on the page again, keeping it in view while that happens. */
    #refresh() {
      if (this.#dialog.open) return this.#schedule();
      this.#load({ quiet: true });
    }

    #schedule() {
      clearTimeout(this.#refreshTimer);
      const seconds = Number(this.getAttribute("refresh-seconds") ?? REFRESH_SECONDS);
      if (seconds > 0) this.#refreshTimer = setTimeout(() => this.#refresh(), seconds * 1000);
    }

    get #api() {
      return (this.getAttribute("api") || SCRIPT_ORIGIN).replace(/\/+$/, "");
    }

    get #subjectPath() {
      const kind = encodeURIComponent(this.getAttribute("subject-kind") || "");
      const ref = encodeURIComponent(this.getAttribute("subject-ref") || "");
      return `/api/v1/subjects/${kind}/${ref}`;
    }

    #needToken() {
      this.dispatchEvent(new CustomEvent("forewarn-token-needed", { bubbles: true, composed: true }));
    }

    async #request(path, options = {}) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
      const headers = { Accept: "application/json" };
      if (this.#access) headers.Authorization = `Bearer ${this.#access}`;
      if (options.body !== undefined) headers["Content-Type"] = "application/json";
      try {
        let response;
        try {
          response = await fetch(this.#api + path, {
            method: options.method || "GET",
            headers,
            body: options.body === undefined ? undefined : JSON.stringify(options.body),
            credentials: "omit",
            cache: "no-store",
            mode: "cors",
            referrerPolicy: "no-referrer",
            signal: controller.signal,
          });
        } catch (_network) {
          throw new ApiError(0, "Forewarn could not be reached");
        }
        let data = null;
        try { data = await response.json(); } catch (_notJson) { data = null; }
        if (!response.ok) {
          // A refused launch token is not answered by asking for another at once (no loop).
          if (response.status === 401 && !options.signIn) {
            this.#access = null;
            this.#needToken();
          }
          throw new ApiError(response.status, data && data.detail, data && data.errors);
        }
        if (data === null || typeof data !== "object") throw new ApiError(response.status, "unreadable answer");
        return data;
      } finally {
        clearTimeout(timer);
      }
    }

    async #signIn() {
      const token = this.#launch;
      this.#launch = null;
      const saved = this.#access;
      this.#access = null;
      try {
        const data = await this.#request("/auth/launch", { method: "POST", body: { token }, signIn: true });
        if (typeof data.access_token !== "string") throw new ApiError(0, "no access token");
        this.#access = data.access_token;
        this.#accessUntil = Date.now() + (Number(data.expires_in) || 0) * 1000 - 15000;
      } catch (error) {
        this.#access = saved;
        throw error;
      }
    }

    async #load({ quiet = false } = {}) {
      const run = ++this.#run;
      clearTimeout(this.#tokenTimer);
      this.#schedule();
      // A confirmed flag stays in view while it is confirmed again; anything else shows loading.
      if (!(quiet && this.#confirmed)) this.#render("loading");
      if (this.#access && Date.now() > this.#accessUntil) this.#access = null;
      if (!this.#access && !this.#launch && !this.#signingIn) {
        this.#needToken();
        // A host that never answers must not leave staff looking at a spinner.
        this.#tokenTimer = setTimeout(() => {
          if (run === this.#run) this.#failed();
        }, TOKEN_WAIT_MS);
        return;
      }
      try {
        if (!this.#access) {
          this.#signingIn ||= this.#signIn().finally(() => { this.#signingIn = null; });
          await this.#signingIn;
        }
        const banner = await this.#request(`${this.#subjectPath}/banner`);
        if (run !== this.#run) return;
        const valid = ["none", "amber", "red"].includes(banner.status) && Array.isArray(banner.flags)
          && (banner.status === "none") === (banner.flags.length === 0);
        if (!valid) return this.#failed();
        this.#confirmed = banner.status === "none" ? null : { banner, at: new Date() };
        this.#render(banner.status, banner);
      } catch (_error) {
        if (run === this.#run) this.#failed();
      }
    }

    /** The status could not be confirmed. A flag already shown stays, marked as possibly out of
     * date with the time it was last confirmed; "no flag" never stays, it becomes the error. */
    #failed() {
      if (!this.#confirmed) return this.#render("error");
      const { banner, at } = this.#confirmed;
      this.#render(banner.status, banner, at);
    }

    #render(state, banner, staleSince = null) {
      const box = this.#root.querySelector(".banner");
      box.className = `banner ${state}`;
      box.setAttribute("data-state", state);
      // A pending appeal is told on its own flag, once.
      const headline = [icon(state), el("div", {}, el("p", { class: "title" }, TEXT[state]))];
      // Red is an alert when it first appears; the error state always is. The rest is status.
      const urgent = state === "error" || staleSince !== null || (state === "red" && !this.#shownRed);
      this.#shownRed = state === "red" || (this.#shownRed && state === "loading");
      this.#status.replaceChildren();
      this.#alert.replaceChildren();
      (urgent ? this.#alert : this.#status).append(el("div", { class: "head" }, ...headline));
      const parts = [];
      if (staleSince) {
        const time = staleSince.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
        this.#alert.append(el("p", { class: "stale" },
          `Forewarn could not be reached: this may be out of date. Last confirmed at ${time}.`));
      }
      if (banner && banner.flags.length) {
        parts.push(el("ul", { class: "flags" }, banner.flags.map((flag) => this.#flagItem(flag, banner))));
      }
      if (state === "error" || staleSince) {
        parts.push(el("button", { type: "button", onclick: () => this.#retry() }, staleSince ? "Check again" : "Retry"));
      }
      this.#body.replaceChildren(...parts);
    }

    #flagItem(flag, banner) {
      const level = flag.level_label || (flag.level === "red" ? "Red" : "Amber");
      const categories = (flag.category_labels || flag.categories || []).join("; ");
      const restrictions = (flag.restrictions || []).map((r) => r.label || r.code).join("; ");
      // Handling derived from the restrictions says the same again: show it once.
      const handling = flag.handling && !sameText(flag.handling, restrictions) ? flag.handling : "";
      const adjustments = (flag.adjustments || []).join("; ");
      const whose = flag.linked
        ? (flag.linked.ref ? ` on linked customer ${flag.linked.ref}: ` : " on a linked customer: ")
        : ": ";
      return el("li", {},
        el("p", {}, el("span", { class: "label" }, `${level} flag${whose}`), categories),
        restrictions ? el("p", {}, el("span", { class: "label" }, "Restrictions: "), restrictions) : null,
        handling ? el("p", {}, el("span", { class: "label" }, "Handling: "), handling) : null,
        adjustments ? el("p", {}, el("span", { class: "label" }, "Adjustments: "), adjustments) : null,
        flag.review_due ? el("p", {}, el("span", { class: "label" }, "Review due: "), longDate(flag.review_due)) : null,
        flag.appeal && flag.appeal.pending ? el("p", { class: "appeal" }, icon("appeal", "small"),
          `Appeal pending: handled by ${flag.appeal.handling_manager || "a Senior Manager"}`) : null,
        // Where the council names the manager from the decision letter on (Eastleigh 30).
        flag.appeal && !flag.appeal.pending && flag.appeal.handling_manager
          ? el("p", { class: "appeal" }, icon("appeal", "small"),
            `Appeal window open: the case is handled by ${flag.appeal.handling_manager}`) : null,
        banner.can_request_details
          ? el("button", { type: "button", "aria-haspopup": "dialog", onclick: (e) => this.#openDialog(flag, e.currentTarget) },
            "View details", el("span", { class: "visually-hidden" }, ` of the ${level} flag${whose.replace(/: $/, "")}: ${categories}`))
          : null,
      );
    }

    #retry() {
      this.#load();
    }

    /* The details dialog ------------------------------------------------------------------ */

    #openDialog(flag, opener) {
      this.#flag = flag;
      this.#opener = opener;
      this.#dialog.replaceChildren();
      this.#dialog.showModal();
      if (Date.now() < this.#grantUntil) this.#showDetails();
      else this.#showForm();
    }

    #closeDialog() {
      // Details live only while the dialog is open: nothing of them survives its closing.
      this.#dialog.replaceChildren();
      if (this.#dialog.open) this.#dialog.close();
      this.#flag = null;
      const opener = this.#opener;
      this.#opener = null;
      if (opener && opener.isConnected) opener.focus();
    }

    #trapFocus(event) {
      if (event.key !== "Tab") return;
      const focusable = [...this.#dialog.querySelectorAll(
        "button, input, textarea, select, a[href], [tabindex]:not([tabindex='-1'])",
      )].filter((node) => !node.disabled && node.getClientRects().length);
      if (!focusable.length) { event.preventDefault(); return; }
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      const active = this.#root.activeElement;
      // A radio group is one tab stop: any of its radios counts as the first stop.
      const atFirst = active === first
        || (first.type === "radio" && active && active.type === "radio" && active.name === first.name);
      if (event.shiftKey && (atFirst || !this.#dialog.contains(active))) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (active === last || !this.#dialog.contains(active))) {
        event.preventDefault();
        first.focus();
      }
    }

    #ids(name) { return `fw-${this.#id}-${name}`; }

    #dialogFrame(title, ...content) {
      const heading = el("h2", { id: this.#ids("title"), tabindex: "-1" }, title);
      this.#dialog.replaceChildren(heading, ...content);
      return heading;
    }

    async #showForm(problem) {
      const heading = this.#dialogFrame("Request access to flag details",
        el("p", {}, "Loading the reasons you can give…"));
      heading.focus();
      if (!this.#reasons) {
        try {
          this.#reasons = await this.#request("/api/v1/access-reasons");
        } catch (_error) {
          if (!this.#dialog.open) return;
          this.#dialogFrame("Request access to flag details",
            el("p", { role: "alert", class: "problem" }, "The reasons could not be loaded. Nothing has been recorded or shown."),
            el("div", { class: "actions" },
              el("button", { type: "button", onclick: () => this.#showForm() }, "Try again"),
              el("button", { type: "button", onclick: () => this.#closeDialog() }, "Cancel")));
          this.#dialog.querySelector("button").focus();
          return;
        }
      }
      if (!this.#dialog.open) return;
      const reasons = this.#reasons;
      const min = reasons.reason_text_min_length;
      const error = el("p", { class: "problem", id: this.#ids("problem"), role: "alert" }, problem || "");
      const codeError = el("p", { class: "problem", id: this.#ids("code-error") });
      const textError = el("p", { class: "problem", id: this.#ids("text-error") });
      const dateError = el("p", { class: "problem", id: this.#ids("date-error") });
      const choices = reasons.reason_codes.map((reason, index) => el("div", { class: "choice" },
        el("input", { type: "radio", name: "reason_code", value: reason.code, id: this.#ids(`r${index}`) }),
        el("label", { for: this.#ids(`r${index}`) }, reason.label)));
      const text = el("textarea", {
        id: this.#ids("text"), name: "reason_text", required: true, minlength: min, maxlength: 2000,
        "aria-describedby": `${this.#ids("hint")} ${this.#ids("text-error")}`,
      });
      const visit = el("input", {
        type: "date", id: this.#ids("date"), name: "visit_date",
        "aria-describedby": `${this.#ids("date-hint")} ${this.#ids("date-error")}`,
      });
      const form = el("form", { novalidate: true, onsubmit: (event) => { event.preventDefault(); this.#submit(form); } },
        el("p", { class: "recorded" },
          "Your access is recorded: the audit log keeps your name, the time, this record and the reason you give. Ask only when your work needs the details."),
        el("fieldset", { "aria-describedby": this.#ids("code-error") }, el("legend", {}, "Reason for access"), choices, codeError),
        el("label", { class: "field", for: this.#ids("text") }, "Explain the business need"),
        el("p", { class: "hint", id: this.#ids("hint") }, `At least ${min} characters.`),
        text, textError,
        el("label", { class: "field", for: this.#ids("date") }, "Visit date (optional)"),
        el("p", { class: "hint", id: this.#ids("date-hint") }, `Access lasts until the end of the visit day, or ${reasons.grant_hours} hours without one.`),
        visit, dateError,
        error,
        el("div", { class: "actions" },
          el("button", { type: "submit", class: "primary" }, "Request access"),
          el("button", { type: "button", onclick: () => this.#closeDialog() }, "Cancel")));
      this.#dialogFrame("Request access to flag details", form);
      (form.querySelector("input[type=radio]") || text).focus();
    }

    async #submit(form) {
      const fields = {
        reason_code: form.querySelector("input[name=reason_code]:checked"),
        reason_text: form.querySelector("textarea"),
        visit_date: form.querySelector("input[type=date]"),
      };
      const messages = {
        reason_code: form.querySelector(`#${this.#ids("code-error")}`),
        reason_text: form.querySelector(`#${this.#ids("text-error")}`),
        visit_date: form.querySelector(`#${this.#ids("date-error")}`),
      };
      const targets = {
        reason_code: form.querySelector("input[type=radio]"),
        reason_text: fields.reason_text,
        visit_date: fields.visit_date,
      };
      const problem = form.querySelector(`#${this.#ids("problem")}`);
      const show = (errors) => {
        for (const name of Object.keys(messages)) {
          const message = errors.find((e) => e.field === name);
          messages[name].textContent = message ? message.message : "";
          if (name !== "reason_code") targets[name].setAttribute("aria-invalid", message ? "true" : "false");
        }
        const first = errors.find((e) => targets[e.field]);
        if (first) targets[first.field].focus();
      };
      const min = this.#reasons.reason_text_min_length;
      const text = fields.reason_text.value.trim();
      const errors = [];
      if (!fields.reason_code) errors.push({ field: "reason_code", message: "Choose a reason." });
      if (text.length < min) errors.push({ field: "reason_text", message: `Write at least ${min} characters (${text.length} so far).` });
      show(errors);
      problem.textContent = "";
      if (errors.length) return;
      const body = { reason_code: fields.reason_code.value, reason_text: text };
      if (fields.visit_date.value) body.visit_date = fields.visit_date.value;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const grant = await this.#request(`${this.#subjectPath}/access-grants`, { method: "POST", body });
        this.#grantUntil = Date.parse(grant.expires_at) || 0;
        if (this.#dialog.open) await this.#showDetails();
      } catch (error) {
        button.disabled = false;
        if (error.status === 422 && error.errors.length) {
          show(error.errors.map((e) => ({ field: e.field.replace(/^body\./, ""), message: e.message })));
        } else {
          problem.textContent = this.#refusal(error, "Your request could not be recorded, so nothing was shown.");
        }
      }
    }

    #refusal(error, fallback) {
      if (error.status === 403) return `Access refused: ${error.message.replace(/^not permitted: /, "")}.`;
      if (error.status === 401) return "Your sign-in has expired. Close this dialog and try again once the banner has reloaded.";
      return `${fallback} Try again later.`;
    }

    async #showDetails() {
      const flag = this.#flag;
      const heading = this.#dialogFrame("Flag details", el("p", {}, "Loading the details…"));
      heading.focus();
      let details;
      try {
        details = await this.#request(`/api/v1/flags/${encodeURIComponent(flag.id)}/details`);
      } catch (error) {
        if (!this.#dialog.open || this.#flag !== flag) return;
        this.#grantUntil = 0;
        if (error.status === 403) {
          this.#showForm(this.#refusal(error, ""));
        } else {
          this.#dialogFrame("Flag details",
            el("p", { role: "alert", class: "problem" }, this.#refusal(error, "The details could not be shown.")),
            el("button", { type: "button", onclick: () => this.#closeDialog() }, "Close"));
          this.#dialog.querySelector("h2").focus();
        }
        return;
      }
      if (!this.#dialog.open || this.#flag !== flag) return;
      const item = (term, value) => (value ? [el("dt", {}, term), el("dd", {}, value)] : []);
      const decision = details.decision || {};
      const panel = (decision.panel || []).map((p) => `${p.by} (${p.role_label || p.role}): ${p.decision}, ${longDate(p.on)}`);
      const subject = details.subject ? `, ${details.subject.kind} ${details.subject.ref}` : "";
      const title = this.#dialogFrame(`Flag details: ${details.level_label || details.level} flag${subject}`,
        el("p", { class: "recorded" }, "This access has been recorded in the audit log."),
        el("dl", {},
          item("Categories", (details.category_labels || details.categories || []).join("; ")),
          item("Reason", details.reason),
          item("Control measures", details.control_measures),
          item("Adjustments", (details.adjustments || []).join("\n")),
          item("Reasonable adjustments", details.reasonable_adjustments),
          item("Handling", details.handling),
          item("Restrictions", (details.restrictions || []).map((r) => r.label).join("\n")),
          item("Responsible manager", details.responsible_manager && details.responsible_manager.name),
          item("Review due", details.review_due && longDate(details.review_due)),
        ),
        el("h3", {}, "Incidents"),
        (details.incidents || []).length
          ? el("ul", {}, details.incidents.map((i) => el("li", {},
            `${longDate(i.occurred_on)}, ${i.channel}: ${(i.behaviour || []).join(", ")}${i.warning_given ? " (warning given)" : ""}`)))
          : el("p", {}, "No incidents linked."),
        el("h3", {}, "Decision"),
        el("dl", {},
          item("Active since", decision.activated_on && longDate(decision.activated_on)),
          item("Case review panel", panel.join("\n")),
          item("Notice", decision.notice && `${decision.notice.method}, ${longDate(decision.notice.on)}`),
          item("Appeals", (decision.appeals || []).map((a) => `received ${longDate(a.received_on)}, ${a.outcome || `pending with ${a.handling_manager || "a Senior Manager not yet assigned"}`}`).join("\n")),
          item("Last review", decision.last_review && `${decision.last_review.outcome}, ${longDate(decision.last_review.on)}`),
        ),
        el("div", { class: "actions" }, el("button", { type: "button", onclick: () => this.#closeDialog() }, "Close")));
      details = null;
      title.focus();
    }
  }

  window.customElements.define("forewarn-flag", ForewarnFlag);
})();
