// A bulk send's page (templates/admin/messaging/bulkbatch/progress.html): draws the progress bar
// from its data-percent and polls the batch's progress while it runs, without a reload. A static
// file, as the Content-Security-Policy allows no inline script; no build step, nothing fetched
// from elsewhere. The bar's width is set through the CSSOM (element.style), which the policy
// allows, where a style="" attribute would be refused.
(function () {
  "use strict";
  function start() {
    var bar = document.getElementById("batch-progress");
    if (!bar) return;
    function show(p) {
      bar.dataset.percent = p.percent;
      bar.dataset.state = p.state;
      bar.setAttribute("aria-valuenow", p.percent);
      bar.firstElementChild.style.width = p.percent + "%";
      document.querySelectorAll("[data-field]").forEach(function (cell) {
        var value = p[cell.dataset.field];
        cell.textContent = (value === null || value === undefined) ? "-" : value;
      });
      var cancel = document.getElementById("batch-cancel");
      if (cancel) cancel.disabled = (p.state === "cancelled" || p.state === "done");
      var retry = document.getElementById("batch-retry-failed");
      if (retry) retry.disabled = !p.failed;
    }
    function poll() {
      fetch(bar.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (p) show(p);
          var state = p ? p.state : bar.dataset.state;
          if (state === "running" || state === "paused") setTimeout(poll, 1000);
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    bar.firstElementChild.style.width = bar.dataset.percent + "%";
    if (bar.dataset.state === "running" || bar.dataset.state === "paused") setTimeout(poll, 1000);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
