// Client portal script. The page works without it: hearts and responses are
// plain forms and each thumbnail links to its larger photo. This adds the
// lightbox, hearts that toggle in place, and live updates.
(function () {
  "use strict";

  var base = document.body.getAttribute("data-portal");
  if (!base) {
    return;
  }

  // ---- Hearts ----------------------------------------------------------

  // The last /state seen, to tell a real change from an echo of our own.
  var lastState = null;

  function heartFormFor(photoLink) {
    var tile = photoLink.closest(".tile");
    return tile ? tile.querySelector(".heart-form") : null;
  }

  function pluralFavourites(count) {
    return count + (count === 1 ? " favourite" : " favourites");
  }

  function updateFavouriteCount(delta) {
    var counter = document.querySelector("[data-favourite-count]");
    if (!counter) {
      return;
    }
    var count = Math.max(0, (parseInt(counter.textContent, 10) || 0) + delta);
    counter.textContent = pluralFavourites(count);
    if (lastState) {
      lastState.favourite_count = Math.max(0, lastState.favourite_count + delta);
    }
  }

  function toggleHeart(form) {
    var button = form.querySelector(".heart");
    if (!button || button.disabled) {
      return Promise.resolve();
    }
    button.disabled = true;
    return fetch(form.action, {
      method: "POST",
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (body) {
        var was = button.getAttribute("aria-pressed") === "true";
        button.setAttribute("aria-pressed", body.favourite ? "true" : "false");
        if (was !== body.favourite) {
          updateFavouriteCount(body.favourite ? 1 : -1);
        }
        syncLightboxHeart();
      })
      .catch(function () {
        // Without a JSON response, the browser posts the form the plain way.
        form.submit();
      })
      .finally(function () {
        button.disabled = false;
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.classList.contains("heart-form")) {
      event.preventDefault();
      toggleHeart(form);
    }
  });

  // ---- Lightbox --------------------------------------------------------

  var lightbox = document.getElementById("lightbox");
  var image = lightbox && lightbox.querySelector(".lightbox-image");
  var caption = lightbox && lightbox.querySelector(".lightbox-caption");
  var lightboxHeart = lightbox && lightbox.querySelector(".lightbox-heart");
  var current = -1;
  var opener = null;
  var pendingSwap = false;

  function photoLinks() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-lightbox]"));
  }

  function syncLightboxHeart() {
    if (!lightbox || lightbox.hidden) {
      return;
    }
    var link = photoLinks()[current];
    var form = link && heartFormFor(link);
    var tileHeart = form && form.querySelector(".heart");
    lightboxHeart.hidden = !tileHeart;
    if (tileHeart) {
      lightboxHeart.setAttribute("aria-pressed", tileHeart.getAttribute("aria-pressed"));
    }
  }

  function preload(index) {
    var link = photoLinks()[index];
    if (link) {
      setSource(new Image(), link);
    }
  }

  // Gives the viewer image both densities, so high-density screens load the
  // 2x rendition, and its size, so the layout does not jump while it loads.
  function setSource(target, link) {
    var standard = link.getAttribute("data-lightbox");
    var dense = link.getAttribute("data-lightbox-2x");
    target.srcset = dense ? standard + " 1x, " + dense + " 2x" : "";
    target.src = standard;
    if (link.getAttribute("data-width")) {
      target.width = Number(link.getAttribute("data-width"));
      target.height = Number(link.getAttribute("data-height"));
    }
  }

  function show(index) {
    var links = photoLinks();
    if (links.length === 0) {
      close();
      return;
    }
    current = (index + links.length) % links.length;
    setSource(image, links[current]);
    image.alt = "Photo " + (current + 1) + " of " + links.length;
    caption.textContent = (current + 1) + " / " + links.length;
    syncLightboxHeart();
    preload(current + 1);
    preload(current - 1);
  }

  function open(index) {
    opener = document.activeElement;
    lightbox.hidden = false;
    document.body.classList.add("lightbox-open");
    show(index);
    lightbox.querySelector(".lightbox-close").focus();
  }

  function close() {
    if (lightbox.hidden) {
      return;
    }
    lightbox.hidden = true;
    document.body.classList.remove("lightbox-open");
    image.removeAttribute("src");
    if (pendingSwap) {
      pendingSwap = false;
      refreshPage();
    }
    if (opener && document.contains(opener)) {
      opener.focus();
    }
  }

  if (lightbox) {
    document.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("[data-lightbox]");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey) {
        return;
      }
      event.preventDefault();
      open(photoLinks().indexOf(link));
    });

    lightbox.querySelector(".lightbox-close").addEventListener("click", close);
    lightbox.querySelector(".lightbox-prev").addEventListener("click", function () {
      show(current - 1);
    });
    lightbox.querySelector(".lightbox-next").addEventListener("click", function () {
      show(current + 1);
    });
    lightboxHeart.addEventListener("click", function () {
      var link = photoLinks()[current];
      var form = link && heartFormFor(link);
      if (form) {
        toggleHeart(form);
      }
    });
    // A click on the dark backdrop, outside the photo and buttons, closes.
    lightbox.addEventListener("click", function (event) {
      if (event.target === lightbox) {
        close();
      }
    });

    document.addEventListener("keydown", function (event) {
      if (lightbox.hidden) {
        return;
      }
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      } else if (event.key === "ArrowLeft") {
        event.preventDefault();
        show(current - 1);
      } else if (event.key === "ArrowRight") {
        event.preventDefault();
        show(current + 1);
      } else if (event.key === "Tab") {
        trapFocus(event);
      }
    });

    // Swipe: a mostly horizontal move of at least 50 px changes photo.
    var touchX = null;
    var touchY = null;
    lightbox.addEventListener("touchstart", function (event) {
      if (event.touches.length === 1) {
        touchX = event.touches[0].clientX;
        touchY = event.touches[0].clientY;
      } else {
        touchX = null;
      }
    }, { passive: true });
    lightbox.addEventListener("touchend", function (event) {
      if (touchX === null || event.changedTouches.length !== 1) {
        return;
      }
      var dx = event.changedTouches[0].clientX - touchX;
      var dy = event.changedTouches[0].clientY - touchY;
      touchX = null;
      if (Math.abs(dx) >= 50 && Math.abs(dx) > Math.abs(dy) * 1.5) {
        show(dx < 0 ? current + 1 : current - 1);
      }
    }, { passive: true });
  }

  // Keeps Tab within the open dialog, as aria-modal promises.
  function trapFocus(event) {
    var focusable = Array.prototype.filter.call(
      lightbox.querySelectorAll("button"),
      function (button) {
        return !button.hidden && !button.disabled;
      }
    );
    if (focusable.length === 0) {
      return;
    }
    var first = focusable[0];
    var last = focusable[focusable.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    } else if (!lightbox.contains(document.activeElement)) {
      event.preventDefault();
      first.focus();
    }
  }

  // ---- Live updates ----------------------------------------------------

  function fetchState() {
    return fetch(base + "/state", {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    }).then(function (response) {
      if (response.status === 404) {
        // The link was replaced or the project removed: show that page.
        window.location.reload();
        throw new Error("link gone");
      }
      if (!response.ok) {
        throw new Error("status " + response.status);
      }
      return response.json();
    });
  }

  // Describes where focus is, so it can be restored after a swap.
  function focusSelector() {
    var element = document.activeElement;
    if (!element || element === document.body) {
      return null;
    }
    if (element.id) {
      return "#" + CSS.escape(element.id);
    }
    var form = element.closest("form");
    if (form) {
      return 'form[action="' + form.getAttribute("action") + '"] button';
    }
    return null;
  }

  function isEditingResponse() {
    var text = document.getElementById("changes-text");
    return !!text && (document.activeElement === text || text.value.trim() !== "");
  }

  // Replaces the live sections with those of a freshly fetched page.
  function refreshPage() {
    return fetch(base, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var focus = focusSelector();
        document.querySelectorAll("[data-live]").forEach(function (section) {
          var replacement = fresh.getElementById(section.id);
          if (!replacement) {
            return;
          }
          if (section.id === "gallery" && lightbox && !lightbox.hidden) {
            pendingSwap = true;
            return;
          }
          if (section.id === "responses" && isEditingResponse()) {
            return;
          }
          section.replaceWith(document.importNode(replacement, true));
        });
        var target = focus && document.querySelector(focus);
        if (target) {
          target.focus();
        }
      });
  }

  function refresh() {
    return fetchState()
      .then(function (state) {
        var changed = lastState === null || JSON.stringify(state) !== JSON.stringify(lastState);
        lastState = state;
        return changed ? refreshPage() : null;
      })
      .catch(function () {
        // The next event or reconnect tries again.
      });
  }

  if (window.EventSource && window.fetch) {
    fetchState()
      .then(function (state) {
        lastState = state;
      })
      .catch(function () {});

    var opened = false;
    var events = new EventSource(base + "/events");
    events.addEventListener("message", refresh);
    events.addEventListener("open", function () {
      // Events sent while disconnected are lost, so catch up on reconnect.
      if (opened) {
        refresh();
      }
      opened = true;
    });
  }
})();
