// lars console: refresh marked regions in place, confirm deletes, filter rows as you type
// and by state on change.
"use strict";

function busy(region) {
  // Never replace a region while the user is typing in it or has an edit form open
  // (a button that merely kept the focus after a click, e.g. a cancelled confirmation,
  // does not count: the region would never refresh again).
  const active = document.activeElement;
  return region.contains(active) && active.matches("input, select, textarea")
    || region.querySelector("details[open]") !== null;
}

async function refresh(region) {
  if (document.hidden || busy(region)) return;
  try {
    const response = await fetch(region.dataset.refresh, {
      credentials: "same-origin", headers: { "Accept": "text/html" } });
    if (response.status === 401) { window.location.assign("/login"); return; }
    if (!response.ok) { markUpdated(region, "refresh failed (" + response.status + ")"); return; }
    const html = await response.text();
    if (busy(region)) return;
    region.innerHTML = html;
    applyFilter();
    markUpdated(region, "updated " + new Date().toISOString().slice(11, 19) + " UTC");
    region.dispatchEvent(new CustomEvent("lars:refreshed", { bubbles: true }));
  } catch (err) {
    markUpdated(region, "offline, retrying");
  }
}

function markUpdated(region, text) {
  const label = region.querySelector("[data-updated]");
  if (label) label.textContent = text;
}

function applyFilter() {
  const input = document.querySelector("input[data-filter]");
  if (!input) return;
  const needle = input.value.trim().toLowerCase();
  const ids = needle.replace(/[\/ ]/g, ":");
  document.querySelectorAll(input.dataset.filter + " tr[data-search]").forEach((row) => {
    const text = row.dataset.search;
    row.hidden = needle !== "" && !(text.startsWith(ids) || text.includes(needle));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach((region) => {
    const interval = parseInt(region.dataset.interval || "5000", 10);
    window.setInterval(() => refresh(region), Math.max(interval, 1000));
  });
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
  const input = document.querySelector("input[data-filter]");
  if (input) input.addEventListener("input", applyFilter);
  // Like the text filter, the state filter applies at once (the server filters by state).
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.requestSubmit());
  });
});
