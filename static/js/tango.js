// Small page behaviours htmx does not cover on its own.

// Upload progress: any htmx form with a [data-upload-progress] element inside fills its .progress-bar from
// htmx's xhr progress events, so a multi-gigabyte dataset does not look like a hung page.
document.addEventListener("htmx:xhr:progress", (event) => {
  const form = event.target.closest("form");
  const box = form && form.querySelector("[data-upload-progress]");
  if (!box || !event.detail.lengthComputable) return;
  const percent = Math.round((event.detail.loaded / event.detail.total) * 100);
  box.classList.add("is-active");
  box.querySelector(".progress-bar").style.width = percent + "%";
  box.querySelector("[data-upload-percent]").textContent =
    percent < 100 ? `Uploading… ${percent}%` : "Uploaded; checking the archive…";
});

// Live consoles (.log) follow their end: each new line scrolls the box down, unless the user scrolled up to read
// (then it stays put, marked .is-paused) until they scroll back to the bottom. Lines arrive through htmx's
// websocket swaps, so a MutationObserver sees every append and every replay, whichever element brought it.
const LOG_SLACK_PX = 24; // "at the bottom" allows for a partly visible last line
const logAtEnd = (log) => log.scrollHeight - log.scrollTop - log.clientHeight <= LOG_SLACK_PX;

// Where a reader paused each console, by id. The state lives here, not on the element: a stage card is re-rendered
// when its job changes state (the console is replaced by one with the same id, and htmx's settle step then resets its
// class), and a reconnecting console's lines are replayed by replacing its content (the box is briefly too short and
// its scroll position collapses).
const readingAt = new Map();
const restoring = new Set(); // consoles still too short to put their reader back

function showPaused(log, paused) {
  log.classList.toggle("is-paused", paused);
  log.title = paused ? "Paused while you read: scroll to the end to follow new lines again." : "";
}

document.addEventListener("scroll", (event) => {
  const log = event.target;
  if (!(log instanceof Element) || !log.classList.contains("log")) return;
  // While the box is too short to hold the reader's place, its position was clamped by the browser, not moved by them.
  if (restoring.has(log.id)) return;
  const paused = !logAtEnd(log);
  if (paused) readingAt.set(log.id, log.scrollTop);
  else readingAt.delete(log.id);
  showPaused(log, paused);
}, true); // capture: scroll events do not bubble

function followLog(log) {
  const at = readingAt.get(log.id);
  showPaused(log, at !== undefined);
  // Scrolling to the end fires a scroll event that finds the box at its end, so it stays unpaused.
  if (at === undefined) {
    log.scrollTop = log.scrollHeight;
    return;
  }
  log.scrollTop = at; // the reader's place, once the box is that long again
  if (log.scrollHeight - log.clientHeight >= at) restoring.delete(log.id);
  else restoring.add(log.id);
}

function logsIn(node) {
  if (!(node instanceof Element)) return [];
  return [...(node.classList.contains("log") ? [node] : []), ...node.querySelectorAll(".log")];
}

// Every append, replay, re-render and class reset of a console passes here.
new MutationObserver((mutations) => {
  const touched = new Set();
  for (const m of mutations) {
    const log = m.target instanceof Element ? m.target.closest(".log") : null;
    if (log) touched.add(log);
    m.addedNodes.forEach((node) => logsIn(node).forEach((l) => touched.add(l)));
  }
  touched.forEach(followLog);
}).observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ["class"] });

document.addEventListener("DOMContentLoaded", () => document.querySelectorAll(".log").forEach(followLog));

// Wizard device search: hide the cards (and whole groups) whose text does not hold every word typed. The chosen
// card stays chosen while hidden; clearing the search shows everything again.
document.addEventListener("input", (event) => {
  const box = event.target.closest && event.target.closest("[data-device-search]");
  if (!box) return;
  const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
  const field = box.closest(".field") || document;
  let shown = 0;
  field.querySelectorAll("[data-device-group]").forEach((group) => {
    let inGroup = 0;
    group.querySelectorAll(".device-card").forEach((card) => {
      const text = card.dataset.search.toLowerCase();
      const match = words.every((w) => text.includes(w));
      card.hidden = !match;
      inGroup += match ? 1 : 0;
    });
    group.hidden = inGroup === 0;
    const count = group.querySelector("[data-group-count]");
    if (count) count.textContent = inGroup;
    shown += inGroup;
  });
  const empty = field.querySelector("[data-device-search-empty]");
  if (empty) empty.hidden = shown > 0;
});

// After htmx redraws the wizard: show the first error next to its field (it may be far below), else the top of
// the new step (the Next button that was pressed sits at the bottom of the old one).
document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail && event.detail.target;
  const wizard = document.getElementById("wizard");
  if (!wizard || !target || target.id !== "wizard") return;
  const error = wizard.querySelector(".has-error, .error");
  const redraw = event.detail.elt && event.detail.elt.matches("[hx-vals*=refresh]"); // an engine picked: stay put
  if (error) error.scrollIntoView({ block: "center" });
  else if (!redraw) wizard.scrollIntoView({ block: "start" });
  const input = error && error.querySelector("input:not([type=hidden]), select, textarea");
  if (input) input.focus({ preventScroll: true });
});

// The project wizard's URL names its draft and step (projects.wizard.Drafts), so a reload or Back redraws the step
// with the answers given. A page loaded whole (the first step, a reload) puts that URL in place of the one it was
// asked for; the state is htmx's, so Back to this entry is restored by htmx like the steps it pushed.
document.addEventListener("DOMContentLoaded", () => {
  const wizard = document.querySelector("#wizard[data-wizard-url]");
  const url = wizard && wizard.dataset.wizardUrl;
  if (url && url !== location.pathname + location.search) history.replaceState({ htmx: true }, "", url);
});
