// "Fix a part of this picture": paint over the picture (shown as a translucent colour); on sending, the
// painted part goes to the server as a black-and-white PNG of the picture's own size (white = painted),
// in the form's file input "mask". Without JavaScript the page still offers "Repaint the whole picture".
(function () {
  "use strict";
  const root = document.querySelector("[data-mask-editor]");
  if (!root || !window.LifebookDrawing) return;
  const { Surface, bindTools, setFile, postWith } = window.LifebookDrawing;
  const canvas = root.querySelector("canvas[data-overlay]");
  const form = root.querySelector("form");
  const input = form.querySelector("input[name=mask]");
  const problem = root.querySelector("[data-problem]");

  root.querySelectorAll("[data-needs-js]").forEach((element) => { element.hidden = false; });
  root.querySelectorAll("[data-without-js]").forEach((element) => { element.hidden = true; });

  const PAINT = "#e6007e"; // a strong pink, seen on most pictures; the canvas itself is half transparent (CSS)
  const surface = new Surface(canvas, {
    tool: "paint",
    look: (stroke) => stroke.layer ? { layer: stroke.layer.coloured }
      : stroke.tool === "erase" ? { color: "#000", composite: "destination-out" } : { color: PAINT },
    onchange: () => { if (problem) problem.textContent = ""; },
  });
  bindTools(root, surface);

  // After a refusal about the words, the server sends the painting back: paint it in again as one "stroke".
  const kept = root.dataset.keptMask;
  if (kept) {
    const picture = new Image();
    picture.onload = () => {
      const white = layerFrom(picture, [255, 255, 255]);
      const coloured = layerFrom(picture, [230, 0, 126]);
      surface.strokes.unshift({ layer: { white, coloured } });
      surface.redraw();
    };
    picture.src = kept;
  }

  // The mask's white as opaque `rgb`, its black as transparent.
  function layerFrom(picture, rgb) {
    const layer = document.createElement("canvas");
    layer.width = canvas.width;
    layer.height = canvas.height;
    const ctx = layer.getContext("2d");
    ctx.drawImage(picture, 0, 0, layer.width, layer.height);
    const pixels = ctx.getImageData(0, 0, layer.width, layer.height);
    const data = pixels.data;
    for (let i = 0; i < data.length; i += 4) {
      const on = data[i] >= 128;
      data[i] = rgb[0]; data[i + 1] = rgb[1]; data[i + 2] = rgb[2]; data[i + 3] = on ? 255 : 0;
    }
    ctx.putImageData(pixels, 0, 0);
    return layer;
  }

  // Black background, painted strokes white, erased strokes black; then hard black or white per pixel
  // (the brush's soft edges are left to the server's blur). Returns null when nothing white is left.
  function maskCanvas() {
    const mask = surface.render((stroke) => stroke.layer ? { layer: stroke.layer.white }
      : { color: stroke.tool === "erase" ? "#000" : "#fff" }, "#000");
    const ctx = mask.getContext("2d");
    const pixels = ctx.getImageData(0, 0, mask.width, mask.height);
    const data = pixels.data;
    let any = false;
    for (let i = 0; i < data.length; i += 4) {
      const value = data[i] >= 128 ? 255 : 0;
      any = any || value === 255;
      data[i] = data[i + 1] = data[i + 2] = value;
      data[i + 3] = 255;
    }
    ctx.putImageData(pixels, 0, 0);
    return any ? mask : null;
  }

  function refuse(text) {
    problem.textContent = text;
    problem.focus();
  }

  let sending = false;
  form.addEventListener("submit", (event) => {
    const submitter = event.submitter;
    if (submitter && submitter.name === "whole") return; // the whole picture: no painting to send
    event.preventDefault();
    if (sending) return;
    const mask = surface.isEmpty() ? null : maskCanvas();
    if (!mask) {
      refuse("Nothing is painted yet: paint over the part of the picture to change, " +
             "or choose “Repaint the whole picture”.");
      return;
    }
    sending = true;
    mask.toBlob((blob) => {
      try {
        setFile(input, blob, "mask.png");
        form.submit();
      } catch (error) { // no DataTransfer in this browser: send the same fields with fetch
        postWith(form, "mask", blob, "mask.png").catch(() => {
          sending = false;
          refuse("The painting could not be sent: the connection was lost. Try again.");
        });
      }
    }, "image/png");
  });
})();
