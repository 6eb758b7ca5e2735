// "Who is where": drag a subject's box to move it, drag its corner to resize it (mouse, finger or pen,
// through Pointer Events). Every change is written to the subject's hidden box field and its choice is set
// to "where you dragged it"; choosing a named place in the list moves the box there. Without this script
// the lists alone work, and the server turns them into boxes.
(function () {
  "use strict";
  const MIN = 0.1; // the smallest side, as a share of the picture (lifebook.layout.MIN_SIDE)
  const HANDLE = 80; // the corner handle's side, in the frame's units (1000 = the picture)

  function round(value) { return Math.round(value * 10000) / 10000; }

  function setUp(form) {
    const svg = form.querySelector("[data-frame]");
    const hint = form.querySelector("[data-hint]");
    if (hint) hint.hidden = false;
    const boxes = {};

    form.querySelectorAll(".layout-box").forEach(function (group) {
      const id = group.dataset.subject;
      const field = form.querySelector('[data-box-for="' + id + '"]');
      const select = form.querySelector('[data-place="' + id + '"]');
      const item = { group: group, field: field, select: select, box: field.value.split(",").map(Number) };
      boxes[id] = item;
      draw(item);

      select.addEventListener("change", function () {
        const option = select.options[select.selectedIndex];
        item.box = option.dataset.box.split(",").map(Number);
        field.value = item.box.join(",");
        draw(item);
      });
      group.querySelector(".layout-area").addEventListener("pointerdown", function (event) { start(event, item, "move"); });
      group.querySelector(".layout-handle").addEventListener("pointerdown", function (event) { start(event, item, "resize"); });
    });

    function draw(item) {
      const [left, top, right, bottom] = item.box;
      const area = item.group.querySelector(".layout-area");
      area.setAttribute("x", left * 1000);
      area.setAttribute("y", top * 1000);
      area.setAttribute("width", (right - left) * 1000);
      area.setAttribute("height", (bottom - top) * 1000);
      const label = item.group.querySelector(".layout-label");
      label.setAttribute("x", left * 1000 + 16);
      label.setAttribute("y", top * 1000 + 56);
      const handle = item.group.querySelector(".layout-handle");
      handle.setAttribute("x", right * 1000 - HANDLE);
      handle.setAttribute("y", bottom * 1000 - HANDLE);
    }

    function point(event) {
      const frame = svg.getBoundingClientRect();
      return [(event.clientX - frame.left) / frame.width, (event.clientY - frame.top) / frame.height];
    }

    function start(event, item, mode) {
      event.preventDefault();
      const target = event.currentTarget;
      target.setPointerCapture(event.pointerId);
      const from = point(event);
      const original = item.box.slice();
      svg.appendChild(item.group); // the box being moved comes to the front, above any it overlaps
      item.group.classList.add("is-dragging");

      function move(moveEvent) {
        const [x, y] = point(moveEvent);
        const dx = x - from[0], dy = y - from[1];
        let [left, top, right, bottom] = original;
        if (mode === "move") {
          const width = right - left, height = bottom - top;
          left = Math.min(Math.max(left + dx, 0), 1 - width);
          top = Math.min(Math.max(top + dy, 0), 1 - height);
          right = left + width;
          bottom = top + height;
        } else {
          right = Math.min(Math.max(right + dx, left + MIN), 1);
          bottom = Math.min(Math.max(bottom + dy, top + MIN), 1);
        }
        item.box = [left, top, right, bottom].map(round);
        item.field.value = item.box.join(",");
        draw(item);
      }

      function end() {
        target.removeEventListener("pointermove", move);
        target.removeEventListener("pointerup", end);
        target.removeEventListener("pointercancel", end);
        item.group.classList.remove("is-dragging");
        markCustom(item);
      }

      target.addEventListener("pointermove", move);
      target.addEventListener("pointerup", end);
      target.addEventListener("pointercancel", end);
    }

    function markCustom(item) {
      let custom = item.select.querySelector('option[value="custom"]');
      if (!custom) {
        custom = document.createElement("option");
        custom.value = "custom";
        custom.textContent = form.dataset.customLabel;
        item.select.appendChild(custom);
      }
      custom.dataset.box = item.box.join(",");
      item.select.value = "custom";
    }
  }

  document.querySelectorAll("[data-layout-editor]").forEach(setUp);
})();
