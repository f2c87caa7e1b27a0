// The import page: post the import, and poll its progress until it answers.
(function () {
  "use strict";
  var form = document.querySelector("form.import-commit");
  if (!form) { return; }
  var bar = form.querySelector(".import-progress");
  var status = form.querySelector(".import-status");
  var button = form.querySelector("[data-import-start]");
  var timer = null;

  function show(data) {
    if (!data || !data.total) { return; }
    bar.value = data.percent;
    status.textContent = data.done.toLocaleString() + " of " + data.total.toLocaleString() +
      " rows (" + data.percent + "%)";
  }

  function poll() {
    fetch(form.dataset.progressUrl, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(show)
      .catch(function () {});
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    bar.hidden = false;
    status.textContent = "Importing…";
    timer = window.setInterval(poll, 400);
    fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                        headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (res) {
        window.clearInterval(timer);
        if (res.ok) {
          bar.value = 100;
          status.textContent = res.body.message;
          window.location.assign(res.body.location);
        } else {
          status.textContent = res.body.error || res.body.message || "The import failed; nothing was written.";
          button.disabled = false;
        }
      })
      .catch(function () {
        window.clearInterval(timer);
        status.textContent = "The import failed; nothing was written.";
        button.disabled = false;
      });
  });
}());
