/* The demo CRM page acting as a CRM host: it mints launch tokens for the signed-in demo user
 * and gives them to the widget (custom element) and to the embed (postMessage). */
(() => {
  "use strict";
  const persona = document.body.dataset.persona;

  async function mint() {
    const response = await fetch("/demo/launch-token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ persona }),
    });
    if (!response.ok) throw new Error(`launch token refused: ${response.status}`);
    return (await response.json()).token;
  }

  for (const widget of document.querySelectorAll("forewarn-flag")) {
    const give = () => mint().then((token) => { widget.launchToken = token; }, () => {});
    widget.addEventListener("forewarn-token-needed", give);
    give();
  }

  for (const frame of document.querySelectorAll("iframe[data-src]")) {
    const origin = new URL(frame.dataset.src, window.location.href).origin;
    window.addEventListener("message", (event) => {
      if (event.source !== frame.contentWindow || event.origin !== origin || !event.data) return;
      if (event.data.type === "forewarn:size" && Number.isFinite(event.data.height)) {
        frame.style.height = `${Math.min(Math.max(event.data.height, 48), 4000)}px`;
        return;
      }
      if (event.data.type !== "forewarn:token-needed") return;
      mint().then((token) => {
        frame.contentWindow.postMessage({ type: "forewarn:launch-token", token }, origin);
      }, () => {});
    });
    frame.src = frame.dataset.src;
  }
})();
