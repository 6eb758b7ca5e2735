// The book page for editors: put chapters and memories in order with the keyboard ("Move up" / "Move down")
// or by dragging the ⠿ handle, and say what happened in the page's live region (#book-status).
//
// Every move sends the list's whole new order ("order") and the order the page showed ("seen") to the list's
// data-order-url. When the book changed meanwhile the server answers 409 and the page says so and changes
// nothing: the page only moves an item after the server has saved the new order. Without JavaScript the same
// buttons post their list's hidden move form and the server moves the item one place.
(function () {
  "use strict";
  const status = document.getElementById("book-status");
  document.documentElement.classList.add("reorder-ready"); // shows the drag handles (book-editing.css)

  let clearing = 0;

  function announce(message, isError) {
    if (!status || !message) return;
    status.classList.toggle("is-error", Boolean(isError));
    // Emptied first, so the same words twice ("moved to position 2 of 5") are read out again.
    status.textContent = "";
    window.clearTimeout(clearing);
    window.setTimeout(() => { status.textContent = message; }, 50);
    // A done move fades after a while; a problem stays until the next message.
    if (!isError) clearing = window.setTimeout(() => { status.textContent = ""; }, 10000);
  }

  const itemsOf = (list) => Array.from(list.children).filter((el) => el.matches("[data-reorder-item]"));
  const idsOf = (items) => items.map((item) => item.dataset.id);
  const isList = (el) => el && el.matches && el.matches("[data-reorder-list]");

  function titleOf(item) {
    const heading = item.querySelector("[data-item-title]"); // the item's own heading comes first
    return heading ? heading.dataset.itemTitle : "";
  }

  function ownMoveButtons(item) {
    // A chapter holds its memories' buttons too; only the chapter's own ones belong to it.
    return Array.from(item.querySelectorAll("[data-move-buttons]"))
      .filter((buttons) => buttons.closest("[data-reorder-item]") === item);
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function refresh(list) {
    // After a move: mark the buttons at the ends (still focusable, so focus can stay on them), and keep the
    // forms' "seen" order true in case one is ever posted without this script.
    const items = itemsOf(list);
    const form = document.getElementById(list.dataset.moveForm); // the list's one hidden move form
    const seenInput = form && form.querySelector("input[name=seen]");
    if (seenInput) seenInput.value = idsOf(items).join(",");
    items.forEach((item, i) => {
      ownMoveButtons(item).forEach((buttons) => {
        markEdge(buttons.querySelector("button[value=up]"), i === 0);
        markEdge(buttons.querySelector("button[value=down]"), i === items.length - 1);
      });
    });
  }

  function markEdge(button, atEdge) {
    if (!button) return;
    if (atEdge) button.setAttribute("aria-disabled", "true");
    else button.removeAttribute("aria-disabled");
  }

  let saving = false;

  async function save(list, before, after) {
    const body = new FormData();
    body.append("csrfmiddlewaretoken", csrfToken());
    body.append("order", idsOf(after).join(","));
    body.append("seen", idsOf(before).join(","));
    const response = await fetch(list.dataset.orderUrl, {
      method: "POST", body, credentials: "same-origin", headers: { "X-Requested-With": "fetch" },
    });
    if (response.ok) return null;
    let detail = "";
    try { detail = (await response.json()).detail; } catch (error) { /* not JSON: use the words below */ }
    return detail || "The new order was not saved (the server answered " + response.status + "). Reload and try again.";
  }

  async function move(list, item, newIndex, focusAfter) {
    const before = itemsOf(list);
    const oldIndex = before.indexOf(item);
    if (saving || oldIndex < 0 || newIndex === oldIndex) return;
    const after = before.slice();
    after.splice(oldIndex, 1);
    after.splice(newIndex, 0, item);
    saving = true;
    list.setAttribute("aria-busy", "true");
    let problem;
    try {
      problem = await save(list, before, after);
    } catch (error) {
      problem = "The new order was not saved: the connection was lost. Try again.";
    } finally {
      saving = false;
      list.removeAttribute("aria-busy");
    }
    if (problem) {
      announce(problem, true);
      return;
    }
    const next = after[newIndex + 1];
    list.insertBefore(item, next || null);
    refresh(list);
    if (focusAfter) focusAfter.focus(); // moving an element in the page drops its focus: put it back
    announce("‘" + titleOf(item) + "’ moved to position " + (newIndex + 1) + " of " + after.length + ".");
  }

  // Keyboard (and click): the "Move up" / "Move down" buttons.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches("form[data-move-form]") || !event.submitter) return; // no submitter: let it post
    // The buttons live in the items; the form they submit (form=...) is the list's hidden one.
    const item = event.submitter.closest("[data-reorder-item]");
    const list = item && item.parentElement;
    if (!isList(list)) return;
    event.preventDefault();
    const button = event.submitter;
    const up = button.value === "up";
    const index = itemsOf(list).indexOf(item);
    const target = up ? index - 1 : index + 1;
    if (target < 0 || target >= itemsOf(list).length) {
      announce("‘" + titleOf(item) + "’ is already " + (up ? "first" : "last") + ".");
      return;
    }
    move(list, item, target, button);
  });

  // Dragging. Only the handle arms an item, so text and fields inside cards still select as usual.
  let dragged = null;
  let drop = null; // {item, before}

  document.addEventListener("mousedown", (event) => {
    const handle = event.target.closest && event.target.closest(".drag-handle");
    const item = handle && handle.closest("[data-reorder-item]");
    if (item && !saving) item.draggable = true;
  });
  document.addEventListener("mouseup", () => {
    if (dragged) return;
    document.querySelectorAll("[data-reorder-item][draggable=true]").forEach((el) => { el.draggable = false; });
  });

  function axisOf(list) {
    // Memory cards sit side by side in a grid; chapters stack. Two items on one line means side by side.
    const items = itemsOf(list);
    if (items.length < 2) return "y";
    return Math.abs(items[0].getBoundingClientRect().top - items[1].getBoundingClientRect().top) < 2 ? "x" : "y";
  }

  function clearDrop() {
    document.querySelectorAll(".drop-before, .drop-after")
      .forEach((el) => el.classList.remove("drop-before", "drop-after"));
    drop = null;
  }

  document.addEventListener("dragstart", (event) => {
    const item = event.target.closest && event.target.closest("[data-reorder-item]");
    if (!item || !item.draggable || !isList(item.parentElement)) return;
    event.stopPropagation();
    dragged = item;
    item.classList.add("is-dragging");
    item.parentElement.dataset.axis = axisOf(item.parentElement);
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", titleOf(item)); // Firefox starts a drag only with some data
  });

  document.addEventListener("dragover", (event) => {
    if (!dragged) return;
    // The item of the dragged one's own list under the pointer (a chapter, when over one of its memories).
    let over = event.target.closest ? event.target.closest("[data-reorder-item]") : null;
    while (over && over.parentElement !== dragged.parentElement) {
      over = over.parentElement.closest("[data-reorder-item]");
    }
    if (!over) { clearDrop(); return; }
    event.preventDefault(); // allows the drop
    event.dataTransfer.dropEffect = "move";
    if (over === dragged) { clearDrop(); return; }
    const box = over.getBoundingClientRect();
    const before = dragged.parentElement.dataset.axis === "x"
      ? event.clientX < box.left + box.width / 2
      : event.clientY < box.top + box.height / 2;
    if (drop && drop.item === over && drop.before === before) return;
    clearDrop();
    over.classList.add(before ? "drop-before" : "drop-after");
    drop = { item: over, before };
  });

  document.addEventListener("drop", (event) => {
    if (!dragged) return;
    event.preventDefault();
    const item = dragged;
    const target = drop;
    clearDrop();
    if (!target) return;
    const list = item.parentElement;
    const others = itemsOf(list).filter((el) => el !== item);
    move(list, item, others.indexOf(target.item) + (target.before ? 0 : 1), null);
  });

  document.addEventListener("dragend", () => {
    if (!dragged) return;
    dragged.classList.remove("is-dragging");
    dragged.draggable = false;
    dragged = null;
    clearDrop();
  });

  // htmx parts of the page (rename a chapter, hide or show a memory).
  document.addEventListener("book-announce", (event) => announce(event.detail.message));
  document.addEventListener("htmx:beforeSwap", (event) => {
    // A refused rename comes back as a 400 holding the form and its plain-words message: show it in place.
    const source = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (event.detail.xhr.status === 400 && source && source.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    const plainWords = (xhr.getResponseHeader("Content-Type") || "").startsWith("text/plain");
    announce(plainWords ? xhr.responseText
      : "That did not work (the server answered " + xhr.status + "). Reload the page and try again.", true);
  });
  document.addEventListener("htmx:sendError", () => announce("The connection was lost. Try again.", true));
})();
