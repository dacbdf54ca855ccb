/* scrapewarden challenge page script.
 *
 * Reads the challenge from #sw-challenge's data-* attributes, checks that cookies work (no
 * cookie, no remembered clearance, so solving would only loop), solves the proof-of-work in a
 * Web Worker (or on this thread when workers are unavailable), gathers a few browser signals,
 * and submits the page's form to /.sw/verify. A normal form submission, so the server's 303
 * and Set-Cookie take the person straight back to the page they asked for.
 *
 * Each tab solves its own challenge; the only state shared between tabs is the cookie jar.
 *
 * On a CAPTCHA page (data-kind="captcha") there is nothing to solve here: the provider's script
 * draws its widget inside the form and calls window.swCaptchaDone (the widget's data-callback)
 * once the person passes; that submits the form. The Continue button does the same by hand.
 */
(function () {
  "use strict";

  var started = Date.now();
  var box = document.getElementById("sw-challenge");
  if (!box) return;
  var data = box.dataset;
  var bits = parseInt(data.bits, 10) || 0;
  var status = document.getElementById("sw-status");
  var progressBox = document.getElementById("sw-progress-box");
  var progress = document.getElementById("sw-progress");
  var form = document.getElementById("sw-form");

  function show(id) {
    var element = document.getElementById(id);
    if (element) element.hidden = false;
    if (progressBox) progressBox.hidden = true;
    if (status) status.textContent = "";
  }

  /* Cookies work when the browser says so AND a test cookie can be written and read back:
   * blocking settings, extensions and sandboxed pages fail the second part silently. */
  function cookiesWork() {
    try {
      if (!navigator.cookieEnabled) return false;
      // A name of its own per tab: tabs challenged at once would otherwise overwrite or delete
      // each other's test cookie between the write and the read, and report cookies as off.
      var value = String(Math.random()).slice(2, 10);
      var name = "sw_cookie_test_" + value;
      document.cookie = name + "=" + value + "; path=/; SameSite=Lax";
      var ok = document.cookie.indexOf(name + "=" + value) !== -1;
      document.cookie = name + "=; path=/; max-age=0; SameSite=Lax";
      return ok;
    } catch (error) {
      return false;  // e.g. SecurityError in a sandboxed (opaque-origin) document
    }
  }

  /* A tab sent back here again and again within a short time passed the check but kept no
   * cookie: say so instead of solving forever. Per tab (sessionStorage), so tabs don't interfere. */
  function looping() {
    try {
      var key = "sw_challenge_passes";
      var now = Date.now();
      var recent = JSON.parse(sessionStorage.getItem(key) || "[]").filter(function (t) {
        return typeof t === "number" && now - t < 60000;
      });
      if (recent.length >= 3) return true;
      recent.push(now);
      sessionStorage.setItem(key, JSON.stringify(recent));
    } catch (error) {
      /* no sessionStorage: nothing to count with; the cookie check still stands */
    }
    return false;
  }

  function signals(tries, engine, elapsed) {
    var ua = navigator.userAgent || "";
    var brands = [];
    try {
      if (navigator.userAgentData && navigator.userAgentData.brands) {
        brands = navigator.userAgentData.brands.map(function (b) { return String(b.brand); });
      }
    } catch (error) { /* ignore */ }
    var found = {
      webdriver: navigator.webdriver === true,
      plugins: navigator.plugins ? navigator.plugins.length : -1,
      languages: navigator.languages ? navigator.languages.length : -1,
      headless_ua: /headless/i.test(ua),
      headless_brand: brands.some(function (b) { return /headless/i.test(b); }),
      cores: navigator.hardwareConcurrency || 0,
      memory: navigator.deviceMemory || 0,
      screen: [screen.width || 0, screen.height || 0],
      touch: navigator.maxTouchPoints || 0,
      visible: document.visibilityState === "visible",
      subtle: !!(window.crypto && window.crypto.subtle),
      engine: engine,
      tries: tries,
      solve_ms: elapsed,
      page_ms: Date.now() - started
    };
    try { found.tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (error) { found.tz = ""; }
    return JSON.stringify(found);
  }

  function report(tries) {
    if (!progress) return;
    // Expected tries are 2^bits; the bar approaches but never reaches the end before success.
    var expected = Math.pow(2, bits);
    var share = 1 - Math.exp(-tries / expected);
    progress.value = Math.min(95, Math.round(share * 100));
  }

  function submit(nonce, tries, engine) {
    var elapsed = Date.now() - solveStart;
    if (progress) progress.value = 100;
    if (status) status.textContent = data.done || "";
    form.elements.nonce.value = nonce;
    form.elements.signals.value = signals(tries, engine, elapsed);
    form.submit();
  }

  function failed() {
    show("sw-failed");
  }

  function solveHere() {
    // Workers blocked (CSP, old browser): load the solver as a script and run it on this thread
    // in batches, so the page still answers between them.
    var script = document.createElement("script");
    script.src = data.worker;
    script.onload = function () {
      window.swSolve(data.challenge, bits, "auto", report, submit, failed);
    };
    script.onerror = failed;
    document.head.appendChild(script);
  }

  function captcha() {
    var sent = false;
    window.swCaptchaDone = function (token) {
      if (sent) return;
      sent = true;
      // The widgets put their token into the form themselves; should one only hand it to the
      // callback, carry it in a field of the provider's name all the same.
      var field = data.field && form.elements[data.field];
      if (typeof token === "string" && token && data.field && !(field && field.value)) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = data.field;
        input.value = token;
        form.appendChild(input);
      }
      if (status) status.textContent = data.done || "";
      form.submit();
    };
  }

  if (!cookiesWork()) { show("sw-cookies"); if (data.kind === "captcha") form.hidden = true; return; }
  if (looping()) { show("sw-loop"); if (data.kind === "captcha") form.hidden = true; return; }
  if (data.kind === "captcha") { captcha(); return; }

  if (progressBox) progressBox.hidden = false;
  if (status) status.textContent = data.working || "";
  var solveStart = Date.now();
  var worker = null;
  try {
    worker = new Worker(data.worker);
  } catch (error) {
    worker = null;
  }
  if (!worker) { solveHere(); return; }
  var finished = false;
  worker.onmessage = function (event) {
    var message = event.data || {};
    if (message.type === "progress") report(message.tries);
    else if (message.type === "done" && !finished) {
      finished = true;
      worker.terminate();
      submit(message.nonce, message.tries, message.engine);
    } else if (message.type === "error" && !finished) {
      finished = true;
      worker.terminate();
      solveHere();
    }
  };
  worker.onerror = function () {
    if (finished) return;
    finished = true;
    worker.terminate();
    solveHere();
  };
  worker.postMessage({ challenge: data.challenge, bits: bits, engine: "auto" });
})();
