// "Turn a drawing into a picture": draw on white paper (pen, eraser, colour, size, undo, clear). On sending,
// the drawing goes as a PNG in the form's file input "drawing", unless a drawing file was chosen, which
// wins. Without JavaScript the drawing pad stays hidden and the upload works on its own.
(function () {
  "use strict";
  const root = document.querySelector("[data-sketch]");
  if (!root || !window.LifebookDrawing) return;
  const { Surface, bindTools, setFile, postWith } = window.LifebookDrawing;
  const canvas = root.querySelector("canvas");
  const form = root.closest("form") || root.querySelector("form");
  const drawing = form.querySelector("input[name=drawing]");
  const chosen = form.querySelector("input[name=sketch]");
  const problem = root.querySelector("[data-problem]");

  root.querySelectorAll("[data-needs-js]").forEach((element) => { element.hidden = false; });

  const surface = new Surface(canvas, {
    tool: "pen",
    size: 6,
    background: "#ffffff",
    look: (stroke) => ({ color: stroke.tool === "erase" ? "#ffffff" : stroke.color }),
    onchange: () => { if (problem) problem.textContent = ""; },
  });
  bindTools(root, surface);

  let sending = false;
  form.addEventListener("submit", (event) => {
    if (chosen && chosen.files.length) return; // an uploaded drawing: the form posts it as it is
    event.preventDefault();
    if (sending) return;
    if (surface.isEmpty()) {
      problem.textContent = "Draw something in the box, or choose a drawing to upload, first.";
      problem.focus();
      return;
    }
    sending = true;
    surface.render(undefined, "#ffffff").toBlob((blob) => {
      try {
        setFile(drawing, blob, "drawing.png");
        form.submit();
      } catch (error) {
        postWith(form, "drawing", blob, "drawing.png").catch(() => {
          sending = false;
          problem.textContent = "The drawing could not be sent: the connection was lost. Try again.";
        });
      }
    }, "image/png");
  });
})();
