// Copy buttons: <button class="copy" data-copy-target="ID"> copies the text of #ID.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy-target]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copyTarget);
  if (!source) return;
  const text = source.innerText.trim();
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {
    // Clipboard API unavailable (plain http, old browser): select the text for Ctrl-C.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  const label = button.textContent;
  button.textContent = document.body.dataset.copiedLabel || "Copied";
  button.dataset.copied = text;
  setTimeout(() => { button.textContent = label; }, 1500);
});

// Selects marked data-autosubmit submit their form on change (no inline handlers: CSP).
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.submit();
});

// "/" focuses the navigation's search box, as on GitHub and GitLab (not while typing).
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  const box = document.getElementById("nav-search");
  if (!box) return;
  event.preventDefault();
  box.focus();
  box.select();
});

// Destructive one-click actions: <button data-confirm="what follows"> asks before it submits
// (no inline onclick: CSP). Cancelling the dialog stops the submit; htmx requests too.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (!button) return;
  if (!window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// Phone width: the navigation is one "Menu" button that opens the links (portal.css hides
// them under 768 px; the button is hidden above).
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("#nav-toggle");
  if (!toggle) return;
  const open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", String(open));
  document.body.classList.toggle("nav-open", open);
});

// Boxes that scroll (wide tables, long <pre>, lists with a height cap) take keyboard focus,
// so the arrow keys can scroll them (WCAG 2.1.1; axe's scrollable-region-focusable): only
// while they overflow, and only the ones without a tabindex of their own.
function scrolls(box) {
  const style = getComputedStyle(box);
  const x = box.scrollWidth > box.clientWidth + 1 && /auto|scroll/.test(style.overflowX);
  const y = box.scrollHeight > box.clientHeight + 1 && /auto|scroll/.test(style.overflowY);
  return x || y;
}
function scrollBoxesFocusable() {
  for (const box of document.querySelectorAll("main *")) {
    if (box.hasAttribute("data-scroll-focus")) {
      if (!scrolls(box)) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-scroll-focus");
      }
    } else if (!box.hasAttribute("tabindex") && scrolls(box)) {
      box.setAttribute("tabindex", "0");
      box.setAttribute("data-scroll-focus", "");
    }
  }
}
document.addEventListener("DOMContentLoaded", scrollBoxesFocusable);
document.addEventListener("htmx:afterSettle", scrollBoxesFocusable);
window.addEventListener("resize", scrollBoxesFocusable);
