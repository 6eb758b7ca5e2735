/* Reading the book one memory at a time.
 *
 * Without this script the page is a plain scrolling list of every memory. With it, one slide shows at a
 * time; arrows, the keyboard (←/→, Home/End), a swipe and the chapter menu turn the pages. Nothing moves
 * by itself: the reader leads. Pictures of the current slide and its neighbours are fetched eagerly, the
 * rest only when they come near.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-carousel]");
  if (!root) return;
  var slides = Array.prototype.slice.call(root.querySelectorAll("[data-slide]"));
  if (!slides.length) return;

  var html = document.documentElement;
  var tools = document.querySelector("[data-reader-tools]");
  var nav = root.querySelector("[data-reader-nav]");
  var previousButton = root.querySelector("[data-previous]");
  var nextButton = root.querySelector("[data-next]");
  var position = root.querySelector("[data-position]");
  var chapterMenu = document.querySelector("[data-chapter-menu]");
  var readAloud = document.querySelector("[data-read-aloud]");
  var contrastButton = document.querySelector("[data-contrast]");
  var current = -1;

  html.classList.add("carousel-ready");
  if (tools) tools.hidden = false;
  nav.hidden = false;

  // The address remembers the page as "#memory=<id>": not an element's id, so the browser does not scroll
  // the bar out of sight to "show" it.
  function slideIndexFromHash() {
    var match = /^#memory=(\d+)$/.exec(location.hash);
    if (!match) return -1;
    for (var i = 0; i < slides.length; i++) {
      if (slides[i].id === "memory-" + match[1]) return i;
    }
    return -1;
  }

  // Switching `loading` from lazy to eager makes the browser fetch the picture now, hidden slide or not.
  function loadNear(index) {
    [index - 1, index, index + 1].forEach(function (i) {
      if (i < 0 || i >= slides.length) return;
      var img = slides[i].querySelector("img");
      if (img && img.loading !== "eager") img.loading = "eager";
    });
  }

  function setDisabled(button, disabled) {
    // aria-disabled rather than disabled: a disabled button drops the keyboard focus.
    button.setAttribute("aria-disabled", disabled ? "true" : "false");
  }

  function show(index) {
    index = Math.max(0, Math.min(slides.length - 1, index));
    if (index === current) return;
    stopReading();
    slides.forEach(function (slide, i) {
      slide.hidden = i !== index;
    });
    current = index;
    loadNear(index);
    position.textContent = index + 1 + " of " + slides.length;
    setDisabled(previousButton, index === 0);
    setDisabled(nextButton, index === slides.length - 1);
    if (chapterMenu) chapterMenu.value = slides[index].getAttribute("data-chapter-start");
    // Remember the page in the address, so a reload or the back button from elsewhere returns to it.
    if (history.replaceState) history.replaceState(null, "", "#memory=" + slides[index].id.slice("memory-".length));
  }

  function next() { show(current + 1); }
  function previous() { show(current - 1); }

  previousButton.addEventListener("click", previous);
  nextButton.addEventListener("click", next);

  if (chapterMenu) {
    chapterMenu.addEventListener("change", function () {
      show(parseInt(chapterMenu.value, 10));
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    var tag = event.target.tagName;
    if (tag === "SELECT" || tag === "INPUT" || tag === "TEXTAREA") return; // those keys belong to the control
    var actions = {
      ArrowRight: next,
      ArrowLeft: previous,
      Home: function () { show(0); },
      End: function () { show(slides.length - 1); },
    };
    if (actions[event.key]) {
      event.preventDefault();
      actions[event.key]();
    }
  });

  window.addEventListener("hashchange", function () {
    var index = slideIndexFromHash();
    if (index >= 0) show(index);
  });

  // Swipe with a finger or pen: a mostly horizontal move of 50 px or more turns the page.
  var start = null;
  var list = root.querySelector("[data-slides]");
  list.addEventListener("pointerdown", function (event) {
    if (event.pointerType === "mouse" || !event.isPrimary) return;
    start = { x: event.clientX, y: event.clientY, id: event.pointerId };
  });
  list.addEventListener("pointerup", function (event) {
    if (!start || event.pointerId !== start.id) return;
    var dx = event.clientX - start.x;
    var dy = event.clientY - start.y;
    start = null;
    if (Math.abs(dx) >= 50 && Math.abs(dx) > 1.5 * Math.abs(dy)) {
      if (dx < 0) next(); else previous();
    }
  });
  list.addEventListener("pointercancel", function () { start = null; });

  // Read aloud: the title and caption, in the browser's own voice. A second press stops.
  var speaking = false;
  function setSpeaking(value) {
    speaking = value;
    if (readAloud) readAloud.textContent = value ? "Stop reading" : "Read aloud";
  }
  function stopReading() {
    if (speaking) {
      window.speechSynthesis.cancel();
      setSpeaking(false);
    }
  }
  if (readAloud && window.speechSynthesis && typeof window.SpeechSynthesisUtterance === "function") {
    readAloud.hidden = false;
    readAloud.addEventListener("click", function () {
      if (speaking) {
        stopReading();
        return;
      }
      var slide = slides[current];
      var title = slide.querySelector("[data-slide-title]");
      var caption = slide.querySelector("[data-slide-caption]");
      var words = title.textContent.trim() + (caption ? ". " + caption.textContent.trim() : "");
      var utterance = new window.SpeechSynthesisUtterance(words);
      utterance.lang = html.lang || "en";
      utterance.rate = 0.9; // a little slower than the default: easier to follow
      utterance.onend = utterance.onerror = function () { setSpeaking(false); };
      window.speechSynthesis.cancel();
      window.speechSynthesis.speak(utterance);
      setSpeaking(true);
    });
  }

  // High contrast: the reader's choice is remembered; with no choice the system's `prefers-contrast` decides.
  var CONTRAST_KEY = "lifebook.reader.contrast";
  function storedContrast() {
    try { return window.localStorage.getItem(CONTRAST_KEY); } catch (e) { return null; }
  }
  function applyContrast(high, remember) {
    html.classList.toggle("contrast-high", high);
    html.classList.toggle("contrast-normal", !high);
    contrastButton.setAttribute("aria-pressed", high ? "true" : "false");
    if (remember) {
      try { window.localStorage.setItem(CONTRAST_KEY, high ? "high" : "normal"); } catch (e) { /* private mode */ }
    }
  }
  var stored = storedContrast();
  var systemHigh = window.matchMedia && window.matchMedia("(prefers-contrast: more)").matches;
  applyContrast(stored ? stored === "high" : systemHigh, false);
  contrastButton.addEventListener("click", function () {
    applyContrast(contrastButton.getAttribute("aria-pressed") !== "true", true);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") stopReading();
  });

  var fromHash = slideIndexFromHash();
  show(fromHash >= 0 ? fromHash : 0);
})();
