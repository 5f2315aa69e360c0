// alert-receiver dashboard: progressive enhancement only. Every page works without this file; with it, the Now
// list refreshes itself and action buttons work in place. Data never goes through innerHTML: a refreshed list is
// HTML the server rendered (and escaped) for us, parsed by DOMParser (which runs no script) and swapped in whole;
// messages are set with textContent.
"use strict";

(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const status = (text, bad) => {
    const el = document.getElementById("status");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("bad", !!bad);
  };

  async function refreshList() {
    const list = document.getElementById("now-list");
    if (!list) return;
    // Never swap the list under someone typing a comment or tabbing through its buttons.
    if (list.contains(document.activeElement) && document.activeElement !== document.body) return;
    let response;
    try {
      response = await fetch(list.dataset.refreshUrl, {credentials: "same-origin", headers: {"Accept": "text/html"}});
    } catch (err) {
      status("Cannot reach the receiver; retrying.", true);
      return;
    }
    if (response.status === 401) {
      status("Your session has ended: reload the page to sign in again.", true);
      return;
    }
    if (!response.ok) {
      status("Refresh failed (" + response.status + "); retrying.", true);
      return;
    }
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.getElementById("now-list");
    if (!fresh) return;
    list.replaceWith(document.importNode(fresh, true));
    const updated = document.getElementById("updated");
    if (updated) updated.textContent = fresh.dataset.updated || "";
  }

  function startRefresh() {
    const list = document.getElementById("now-list");
    if (!list) return;
    const seconds = Math.max(2, parseInt(list.dataset.refreshSeconds || "10", 10));
    setInterval(() => { if (!document.hidden) refreshList(); }, seconds * 1000);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshList(); });
  }

  // Action forms (ack, resolve, retry): POST with the CSRF token, read the JSON answer, update the page.
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-async")) return;
    event.preventDefault();
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    let answer = {};
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST", credentials: "same-origin", body: new FormData(form),
        headers: {"Accept": "application/json", "X-CSRF-Token": csrf()},
      });
      answer = await response.json().catch(() => ({}));
    } catch (err) {
      status("Cannot reach the receiver: nothing was done.", true);
      buttons.forEach((b) => { b.disabled = false; });
      return;
    }
    if (!response.ok) {
      status(answer.detail || ("Refused (" + response.status + ")."), true);
      buttons.forEach((b) => { b.disabled = false; });
      return;
    }
    status(answer.message || "Done.", false);
    if (document.getElementById("now-list")) {
      document.activeElement && document.activeElement.blur && document.activeElement.blur();
      await refreshList();
    } else {
      // Alert and Delivery pages: show the new state (a plain reload keeps the message in the status line).
      sessionStorage.setItem("alert-receiver-status", answer.message || "Done.");
      window.location.reload();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    const kept = sessionStorage.getItem("alert-receiver-status");
    if (kept) {
      sessionStorage.removeItem("alert-receiver-status");
      status(kept, false);
    }
    startRefresh();
  });
})();
