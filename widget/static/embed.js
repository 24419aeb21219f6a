/* The iframe embed page: hands the widget a launch token posted by the CRM, by form or by
 * postMessage from an allowed origin (exact match; every other message is ignored), or the
 * bearer token the server issued for a session signed in on this page's site (Canvas). */
(() => {
  "use strict";
  const widget = document.querySelector("forewarn-flag");
  const allowed = (document.body.dataset.allowedOrigins || "").split(" ").filter(Boolean);
  const trusted = (origin) => origin === window.location.origin || allowed.includes(origin);
  const parentOrigins = [window.location.origin, ...allowed];

  let asking = null;

  function post() {
    // The request carries no secret; only an allowed origin can answer it usefully.
    for (const origin of parentOrigins) {
      window.parent.postMessage({ type: "forewarn:token-needed" }, origin);
    }
  }

  function askParent() {
    if (window.parent === window) return;
    clearTimeout(asking);
    post();
    // The host may start listening only after this page has loaded: ask again a few times.
    let delay = 500;
    const again = () => {
      if (delay > 4000) return;
      post();
      delay *= 2;
      asking = setTimeout(again, delay);
    };
    asking = setTimeout(again, delay);
  }

  // The frame takes the height of what it shows, the details dialog included, so nothing is
  // cut off: the host sets the iframe's height from each "forewarn:size" message.
  let told = 0;
  function tellSize() {
    if (window.parent === window) return;
    const dialog = widget.shadowRoot && widget.shadowRoot.querySelector("dialog");
    const open = dialog && dialog.open ? dialog.scrollHeight + 32 : 0;
    const height = Math.ceil(Math.max(document.documentElement.scrollHeight, document.body.scrollHeight, open));
    if (height === told) return;
    told = height;
    for (const origin of parentOrigins) {
      window.parent.postMessage({ type: "forewarn:size", height }, origin);
    }
  }
  const sizes = new ResizeObserver(tellSize);
  sizes.observe(document.body);
  customElements.whenDefined("forewarn-flag").then(() => {
    const dialog = widget.shadowRoot && widget.shadowRoot.querySelector("dialog");
    if (!dialog) return;
    sizes.observe(dialog);
    new MutationObserver(tellSize).observe(dialog, { attributes: true, attributeFilter: ["open"] });
  });

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || !trusted(event.origin)) return;
    const data = event.data;
    if (!data || data.type !== "forewarn:launch-token" || typeof data.token !== "string") return;
    clearTimeout(asking);
    widget.launchToken = data.token;
  });
  const posted = widget.dataset.launchToken;
  const session = widget.dataset.accessToken;
  widget.removeAttribute("data-launch-token");
  widget.removeAttribute("data-access-token");
  // Signed in by the session (Canvas): a fresh page load gives a fresh token while it lasts.
  widget.addEventListener("forewarn-token-needed", session ? () => window.location.reload() : askParent);
  if (session) widget.accessToken = session;
  else if (posted) widget.launchToken = posted;
  else askParent();
})();
