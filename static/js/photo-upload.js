// Photos: drag and drop many at once, each with its own progress bar; the finished photo's card (with
// its plain-words notes) appears as soon as it is checked. Without JavaScript the form posts as usual.
(function () {
  "use strict";
  const form = document.querySelector("[data-photo-upload]");
  if (!form) return;
  const input = form.querySelector("input[type=file]");
  const list = form.querySelector(".uploads");
  const photos = document.getElementById("photos");
  const token = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  function upload(file) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = file.name + " ";
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    item.append(name, bar);
    list.append(item);

    const data = new FormData();
    data.append("csrfmiddlewaretoken", token);
    data.append("photos", file);
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("X-Requested-With", "fetch");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
    });
    request.addEventListener("load", () => {
      if (request.status === 200) {
        photos.insertAdjacentHTML("beforeend", request.responseText);
        if (window.htmx) window.htmx.process(photos.lastElementChild);
        const empty = document.getElementById("no-photos");
        if (empty) empty.remove();
        item.textContent = file.name + ": added.";
      } else {
        item.textContent = request.status === 413 || request.status === 400
          ? request.responseText.slice(0, 500) || file.name + " was not added."
          : file.name + " was not added (the server answered " + request.status + "). Try again.";
        item.classList.add("error");
      }
    });
    request.addEventListener("error", () => {
      item.textContent = file.name + " was not added: the connection was lost. Try again.";
      item.classList.add("error");
    });
    request.send(data);
  }

  function uploadAll(files) {
    Array.from(files).forEach(upload);
    input.value = "";
  }

  form.addEventListener("submit", (event) => {
    if (!input.files.length) return;
    event.preventDefault();
    uploadAll(input.files);
  });
  input.addEventListener("change", () => uploadAll(input.files));
  ["dragenter", "dragover"].forEach((type) => form.addEventListener(type, (event) => {
    event.preventDefault();
    form.classList.add("is-dragging");
  }));
  ["dragleave", "drop"].forEach((type) => form.addEventListener(type, () => form.classList.remove("is-dragging")));
  form.addEventListener("drop", (event) => {
    event.preventDefault();
    uploadAll(event.dataTransfer.files);
  });
})();
