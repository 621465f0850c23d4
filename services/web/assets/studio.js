// Small progressive enhancements; every form works without this script.
(function () {
  "use strict";

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.querySelector(button.getAttribute("data-copy"));
      if (!input) return;
      input.select();
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy link"; }, 1500); };
      if (navigator.clipboard) { navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); }); }
      else { document.execCommand("copy"); done(); }
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  var zone = document.querySelector("[data-detect-time-zone]");
  if (zone && !zone.dataset.touched) {
    try { zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || zone.value; } catch (e) { /* keep the default */ }
  }

  // Uploads one file per request, so each file gets its own progress bar and
  // a failed file can be retried without sending the others again.
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var input = form.querySelector("input[type=file]");
      if (!input || !input.files.length || !window.FormData) return;
      event.preventDefault();
      var list = form.querySelector("[data-progress]");
      var csrf = form.querySelector("input[name=csrf_token]").value;
      var files = Array.prototype.slice.call(input.files);
      var pending = files.length;
      var failed = 0;
      var uploaded = 0;
      var maxBytes = Number(form.dataset.maxBytes) || 0;
      // Reloads once every file is uploaded. When some failed, the ones that
      // worked get a link instead, so the failures and their Retry stay on screen.
      var finish = function () {
        if (pending !== 0) return;
        if (failed === 0) { window.location.href = window.location.pathname + "?notice=uploaded"; return; }
        if (uploaded > 0 && !list.querySelector("[data-reload]")) {
          var reload = document.createElement("li");
          var link = document.createElement("a");
          link.href = window.location.pathname; link.textContent = "Show the uploaded photos";
          link.setAttribute("data-reload", "");
          reload.appendChild(link);
          list.appendChild(reload);
        }
      };
      files.forEach(function (file) {
        var row = document.createElement("li");
        var label = document.createElement("span");
        label.textContent = file.name;
        var bar = document.createElement("progress");
        bar.max = 100; bar.value = 0;
        var status = document.createElement("span");
        row.appendChild(label); row.appendChild(bar); row.appendChild(status);
        list.appendChild(row);
        // Shows why the file failed, with a Retry button that sends it again.
        var fail = function (message) {
          failed += 1;
          pending -= 1;
          status.textContent = message + " ";
          var retry = document.createElement("button");
          retry.type = "button"; retry.className = "link"; retry.textContent = "Retry";
          retry.addEventListener("click", function () { status.textContent = ""; failed -= 1; pending += 1; send(); });
          status.appendChild(retry);
          finish();
        };
        var send = function () {
          // A file over the limit is rejected here: the server returns 413
          // before reading the whole body, which browsers may report as a
          // network error instead.
          if (maxBytes && file.size > maxBytes) {
            fail("'" + file.name + "' is larger than the limit of " + form.dataset.maxUpload + " per file.");
            return;
          }
          var data = new FormData();
          data.append("csrf_token", csrf);
          data.append("file", file, file.name);
          var xhr = new XMLHttpRequest();
          xhr.open("POST", form.action);
          xhr.setRequestHeader("Accept", "application/json");
          xhr.upload.onprogress = function (e) { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
          xhr.onload = function () {
            if (xhr.status === 202) {
              bar.value = 100; status.textContent = "uploaded";
              uploaded += 1; pending -= 1; finish();
              return;
            }
            var message = "failed";
            try { message = JSON.parse(xhr.responseText).error.message; } catch (e) { /* keep the generic text */ }
            fail(message);
          };
          xhr.onerror = function () { fail("network error"); };
          xhr.send(data);
        };
        send();
      });
    });
  });
})();
