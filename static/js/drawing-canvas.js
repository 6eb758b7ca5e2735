// What the mask editor and the sketch pad share: painting on a canvas with mouse, pen or finger (pointer
// events), strokes kept as a list so undo (button or Ctrl+Z) and clear simply redraw, and the tool buttons.
// The canvas keeps its own pixel size (the picture's); pointer positions are scaled to it.
(function () {
  "use strict";

  // One surface per canvas. Its user says how a stroke looks through `look(stroke)` -> {color, composite},
  // so the same strokes can be drawn translucent on screen and black and white for the server.
  function Surface(canvas, options) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.strokes = [];
    this.tool = options.tool || "paint";
    this.size = options.size || 20; // in screen pixels: the brush looks the same on any picture size
    this.color = options.color || "#000000";
    this.look = options.look;
    this.background = options.background || null; // a colour to fill before the strokes (the sketch's paper)
    this.onchange = options.onchange || function () {};
    this.current = null;
    this.pointer = null;
    this.redraw();
    this.listen();
  }

  Surface.prototype.scale = function () {
    const rect = this.canvas.getBoundingClientRect();
    return rect.width ? this.canvas.width / rect.width : 1;
  };

  Surface.prototype.point = function (event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = (event.clientX - rect.left) * (this.canvas.width / rect.width);
    const y = (event.clientY - rect.top) * (this.canvas.height / rect.height);
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  };

  Surface.prototype.listen = function () {
    const canvas = this.canvas;
    canvas.addEventListener("pointerdown", (event) => {
      if (this.pointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
      event.preventDefault();
      this.pointer = event.pointerId;
      try { canvas.setPointerCapture(event.pointerId); } catch (e) { /* capture is a nicety */ }
      this.current = { tool: this.tool, color: this.color, width: Math.max(1, this.size * this.scale()),
                       points: [this.point(event)] };
      this.strokes.push(this.current);
      this.drawStroke(this.ctx, this.current, 0);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (event.pointerId !== this.pointer || !this.current) return;
      event.preventDefault();
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      (events.length ? events : [event]).forEach((e) => {
        this.current.points.push(this.point(e));
        this.drawStroke(this.ctx, this.current, this.current.points.length - 2);
      });
    });
    const end = (event) => {
      if (event.pointerId !== this.pointer) return;
      this.pointer = null;
      if (this.current) {
        this.current = null;
        this.onchange("painted");
      }
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("lostpointercapture", end);
  };

  // Draw one stroke onto any context, from point index `from` on (so a moving stroke adds only its new part).
  Surface.prototype.drawStroke = function (ctx, stroke, from, look) {
    const style = (look || this.look)(stroke);
    ctx.save();
    ctx.globalCompositeOperation = style.composite || "source-over";
    if (stroke.layer) { // a mask painted earlier, brought back after the page refused something else
      ctx.drawImage(style.layer || stroke.layer, 0, 0, ctx.canvas.width, ctx.canvas.height);
      ctx.restore();
      return;
    }
    ctx.strokeStyle = ctx.fillStyle = style.color;
    ctx.lineWidth = stroke.width;
    ctx.lineCap = ctx.lineJoin = "round";
    const points = stroke.points;
    const start = Math.max(0, from);
    if (points.length === 1) {
      ctx.beginPath();
      ctx.arc(points[0][0], points[0][1], stroke.width / 2, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.beginPath();
      ctx.moveTo(points[start][0], points[start][1]);
      for (let i = start + 1; i < points.length; i++) ctx.lineTo(points[i][0], points[i][1]);
      ctx.stroke();
    }
    ctx.restore();
  };

  // Everything again, onto this canvas or onto another one of the same size (the export).
  Surface.prototype.redraw = function (ctx, look, background) {
    ctx = ctx || this.ctx;
    const fill = background === undefined ? this.background : background;
    ctx.save();
    ctx.globalCompositeOperation = "source-over";
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    if (fill) {
      ctx.fillStyle = fill;
      ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    }
    ctx.restore();
    this.strokes.forEach((stroke) => this.drawStroke(ctx, stroke, 0, look));
  };

  Surface.prototype.undo = function () {
    if (!this.strokes.length) return false;
    this.strokes.pop();
    this.redraw();
    this.onchange("undone");
    return true;
  };

  Surface.prototype.clear = function () {
    if (!this.strokes.length) return false;
    this.strokes = [];
    this.redraw();
    this.onchange("cleared");
    return true;
  };

  Surface.prototype.isEmpty = function () {
    return !this.strokes.some((stroke) => stroke.layer || stroke.tool !== "erase");
  };

  // A copy of the drawing at the canvas's own size, drawn with another look (e.g. black and white).
  Surface.prototype.render = function (look, background) {
    const copy = document.createElement("canvas");
    copy.width = this.canvas.width;
    copy.height = this.canvas.height;
    this.redraw(copy.getContext("2d"), look, background);
    return copy;
  };

  // The tool buttons in `root`: [data-tool] (aria-pressed), [data-size], [data-color], [data-action=undo|clear],
  // and a [data-status] line that says what happened (aria-live).
  function bindTools(root, surface) {
    const status = root.querySelector("[data-status]");
    const say = (text) => { if (status) status.textContent = text; };
    const tools = root.querySelectorAll("[data-tool]");
    tools.forEach((button) => {
      button.addEventListener("click", () => {
        surface.tool = button.dataset.tool;
        tools.forEach((other) => other.setAttribute("aria-pressed", String(other === button)));
      });
    });
    const size = root.querySelector("[data-size]");
    if (size) {
      surface.size = Number(size.value);
      size.addEventListener("input", () => { surface.size = Number(size.value); });
    }
    const color = root.querySelector("[data-color]");
    if (color) {
      surface.color = color.value;
      color.addEventListener("input", () => { surface.color = color.value; });
    }
    const undo = () => say(surface.undo() ? "The last stroke was undone." : "Nothing to undo.");
    root.querySelectorAll("[data-action=undo]").forEach((b) => b.addEventListener("click", undo));
    root.querySelectorAll("[data-action=clear]").forEach((b) => b.addEventListener("click", () => {
      say(surface.clear() ? "Cleared." : "Nothing to clear.");
    }));
    // Ctrl+Z (Cmd+Z on a Mac) undoes a stroke, except while typing in a text box.
    document.addEventListener("keydown", (event) => {
      if (!(event.ctrlKey || event.metaKey) || event.shiftKey || event.altKey || event.key.toLowerCase() !== "z") return;
      const target = event.target;
      if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) &&
          !(target.type === "range" || target.type === "radio" || target.type === "button")) return;
      event.preventDefault();
      undo();
    });
    return say;
  }

  // A slider whose value is better said in words ("a little" … "completely"): data-words="a|b|c",
  // spread evenly over its range, shown in an <output> and given to screen readers as aria-valuetext.
  function describeRange(input) {
    const words = (input.dataset.words || "").split("|").filter(Boolean);
    if (!words.length) return;
    const output = input.id ? document.querySelector(`output[for="${input.id}"]`) : null;
    const update = () => {
      const min = Number(input.min || 0), max = Number(input.max || 1);
      const share = max > min ? (Number(input.value) - min) / (max - min) : 0;
      const word = words[Math.min(words.length - 1, Math.floor(share * words.length))];
      input.setAttribute("aria-valuetext", word);
      if (output) output.textContent = word;
    };
    input.addEventListener("input", update);
    update();
  }

  // Put a Blob into a form's file input, so the form posts it as if it had been chosen from disk.
  function setFile(input, blob, name) {
    const transfer = new DataTransfer(); // throws where unsupported; callers fall back to fetch
    transfer.items.add(new File([blob], name, { type: blob.type || "image/png" }));
    input.files = transfer.files;
  }

  // Send the form with this file added, for browsers without DataTransfer: follow the redirect, or show
  // the page the server answered (a refusal re-renders the page).
  function postWith(form, field, blob, name) {
    const data = new FormData(form);
    data.set(field, blob, name);
    return fetch(form.action, { method: "POST", body: data, credentials: "same-origin" }).then((response) => {
      if (response.redirected) {
        window.location.assign(response.url);
        return;
      }
      return response.text().then((html) => {
        document.open();
        document.write(html);
        document.close();
      });
    });
  }

  window.LifebookDrawing = { Surface, bindTools, describeRange, setFile, postWith };
  document.querySelectorAll("input[type=range][data-words]").forEach(describeRange);
})();
