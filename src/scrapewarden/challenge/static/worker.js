/* scrapewarden proof-of-work solver.
 *
 * Finds a decimal nonce such that SHA-256(challenge + ":" + nonce) starts with at least `bits`
 * zero bits. Runs as a Web Worker (message {challenge, bits, engine} in; {type:"progress"} and
 * {type:"done", nonce, tries, engine} out), and also loads as a plain script so the page can
 * solve on its main thread when workers are unavailable (swSolve is then a global).
 *
 * Two engines: WebCrypto's crypto.subtle.digest where it exists (secure contexts only: https,
 * http://localhost, http://127.0.0.1), and a small pure-JS SHA-256 everywhere else. The JS one
 * hashes the fixed prefix once and only the last block(s) per nonce (the "midstate" trick),
 * which keeps it fast on old devices.
 */
(function (root) {
  "use strict";

  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);
  var INITIAL = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  var W = new Int32Array(64);

  /* One 64-byte block of `bytes` at `at` folded into the 8-word `state` (an Int32Array). */
  function compress(state, bytes, at) {
    var i, t1, t2;
    for (i = 0; i < 16; i++, at += 4) {
      W[i] = (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
    }
    for (i = 16; i < 64; i++) {
      var w15 = W[i - 15], w2 = W[i - 2];
      var s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      var s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    var a = state[0], b = state[1], c = state[2], d = state[3];
    var e = state[4], f = state[5], g = state[6], h = state[7];
    for (i = 0; i < 64; i++) {
      t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
        ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
        ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    state[0] = (state[0] + a) | 0; state[1] = (state[1] + b) | 0;
    state[2] = (state[2] + c) | 0; state[3] = (state[3] + d) | 0;
    state[4] = (state[4] + e) | 0; state[5] = (state[5] + f) | 0;
    state[6] = (state[6] + g) | 0; state[7] = (state[7] + h) | 0;
  }

  /* UTF-8 bytes of a string (TextEncoder where present, else by hand for old engines). */
  function utf8(text) {
    if (typeof TextEncoder !== "undefined") return new TextEncoder().encode(text);
    var out = [], i, code;
    for (i = 0; i < text.length; i++) {
      code = text.charCodeAt(i);
      if (code >= 0xd800 && code < 0xdc00 && i + 1 < text.length) {
        code = 0x10000 + ((code - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00);
      }
      if (code < 0x80) out.push(code);
      else if (code < 0x800) out.push(0xc0 | (code >> 6), 0x80 | (code & 63));
      else if (code < 0x10000) out.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
      else out.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
    }
    return new Uint8Array(out);
  }

  /* A hasher for many messages that share `prefix`: the prefix's full blocks are hashed once. */
  function prefixHasher(prefix) {
    var head = utf8(prefix);
    var full = head.length - (head.length % 64);
    var mid = new Int32Array(INITIAL);
    for (var at = 0; at < full; at += 64) compress(mid, head, at);
    var tail = head.subarray(full);
    var buffer = new Uint8Array(256);
    var state = new Int32Array(8);
    buffer.set(tail);
    /* SHA-256 state words of prefix + suffix; suffix is ASCII (a decimal nonce). */
    return function (suffix) {
      var length = tail.length, i;
      for (i = 0; i < suffix.length; i++) buffer[length++] = suffix.charCodeAt(i);
      var total = full + length;
      buffer[length++] = 0x80;
      var padded = length + 8 <= 64 ? 64 : (length + 8 <= 128 ? 128 : Math.ceil((length + 8) / 64) * 64);
      for (i = length; i < padded; i++) buffer[i] = 0;
      var bitsHigh = Math.floor(total / 0x20000000), bitsLow = (total * 8) >>> 0;
      buffer[padded - 8] = bitsHigh >>> 24; buffer[padded - 7] = bitsHigh >>> 16;
      buffer[padded - 6] = bitsHigh >>> 8; buffer[padded - 5] = bitsHigh;
      buffer[padded - 4] = bitsLow >>> 24; buffer[padded - 3] = bitsLow >>> 16;
      buffer[padded - 2] = bitsLow >>> 8; buffer[padded - 1] = bitsLow;
      state.set(mid);
      for (var block = 0; block < padded; block += 64) compress(state, buffer, block);
      return state;
    };
  }

  function hexOfWords(words) {
    var out = "";
    for (var i = 0; i < 8; i++) out += ("00000000" + (words[i] >>> 0).toString(16)).slice(-8);
    return out;
  }

  /* SHA-256 of a string, as hex, by the pure-JS engine (tests compare it with hashlib). */
  function sha256Hex(text) {
    if (/^[\x00-\x7f]*$/.test(text)) return hexOfWords(prefixHasher(text)(""));
    // Non-ASCII: hash the whole UTF-8 message as the "prefix" part. Rarely used, so done simply.
    var bytes = utf8(text);
    var state = new Int32Array(INITIAL);
    var blocks = Math.ceil((bytes.length + 9) / 64) * 64;
    var buffer = new Uint8Array(blocks);
    buffer.set(bytes);
    buffer[bytes.length] = 0x80;
    var bitsHigh = Math.floor(bytes.length / 0x20000000), bitsLow = (bytes.length * 8) >>> 0;
    buffer[blocks - 8] = bitsHigh >>> 24; buffer[blocks - 7] = bitsHigh >>> 16;
    buffer[blocks - 6] = bitsHigh >>> 8; buffer[blocks - 5] = bitsHigh;
    buffer[blocks - 4] = bitsLow >>> 24; buffer[blocks - 3] = bitsLow >>> 16;
    buffer[blocks - 2] = bitsLow >>> 8; buffer[blocks - 1] = bitsLow;
    for (var at = 0; at < blocks; at += 64) compress(state, buffer, at);
    return hexOfWords(state);
  }

  /* Leading zero bits of big-endian 32-bit words (first `need` bits are enough). */
  function zeroBitsOfWords(words, need) {
    var count = 0;
    for (var i = 0; i < 8 && count < need; i++) {
      var word = words[i] >>> 0;
      if (word === 0) { count += 32; continue; }
      return count + Math.clz32(word);
    }
    return count;
  }

  function zeroBitsOfBytes(bytes, need) {
    var count = 0;
    for (var i = 0; i < bytes.length && count < need; i++) {
      if (bytes[i] === 0) { count += 8; continue; }
      return count + Math.clz32(bytes[i]) - 24;
    }
    return count;
  }

  function hasSubtle() {
    return !!(root.crypto && root.crypto.subtle && typeof root.crypto.subtle.digest === "function");
  }

  var JS_BATCH = 20000;     // ~10-30 ms of work per batch: progress stays smooth, messages few
  var SUBTLE_BATCH = 1024;  // digests in flight at once

  /* Solve; calls onProgress(tries) between batches and onDone(nonce, tries, engine) at the end.
   * `engine` is "subtle", "js" or "auto" (subtle when available). */
  function swSolve(challenge, bits, engine, onProgress, onDone, onError) {
    var useSubtle = engine === "subtle" || (engine !== "js" && hasSubtle());
    var prefix = challenge + ":";
    var tries = 0;
    // Between batches, yield to the event loop so the page (or worker messages) stay responsive.
    var later = typeof setTimeout === "function" ? function (fn) { setTimeout(fn, 0); } : function (fn) { fn(); };

    if (!useSubtle) {
      var hash = prefixHasher(prefix);
      var jsBatch = function () {
        var end = tries + JS_BATCH;
        for (; tries < end; tries++) {
          var nonce = String(tries);
          if (zeroBitsOfWords(hash(nonce), bits) >= bits) {
            onDone(nonce, tries + 1, "js");
            return;
          }
        }
        onProgress(tries);
        later(jsBatch);
      };
      jsBatch();
      return;
    }

    var encode = typeof TextEncoder !== "undefined" ? (function () {
      var encoder = new TextEncoder();
      return function (s) { return encoder.encode(s); };
    })() : utf8;
    var subtleBatch = function () {
      var start = tries, pending = [];
      for (var i = 0; i < SUBTLE_BATCH; i++) {
        pending.push(root.crypto.subtle.digest("SHA-256", encode(prefix + (start + i))));
      }
      tries += SUBTLE_BATCH;
      Promise.all(pending).then(function (digests) {
        for (var j = 0; j < digests.length; j++) {
          if (zeroBitsOfBytes(new Uint8Array(digests[j]), bits) >= bits) {
            onDone(String(start + j), start + j + 1, "subtle");
            return;
          }
        }
        onProgress(tries);
        subtleBatch();
      }, onError);
    };
    subtleBatch();
  }

  root.swSha256Hex = sha256Hex;
  root.swSolve = swSolve;
  root.swHasSubtle = hasSubtle;

  var inWorker = typeof WorkerGlobalScope !== "undefined" && root instanceof WorkerGlobalScope;
  if (inWorker) {
    root.onmessage = function (event) {
      var job = event.data || {};
      var lastReport = 0;
      swSolve(String(job.challenge), job.bits | 0, job.engine || "auto",
        function (tries) {
          var now = Date.now();
          if (now - lastReport > 100) { lastReport = now; root.postMessage({ type: "progress", tries: tries }); }
        },
        function (nonce, tries, used) { root.postMessage({ type: "done", nonce: nonce, tries: tries, engine: used }); },
        function (error) { root.postMessage({ type: "error", message: String(error) }); });
    };
  }
})(typeof self !== "undefined" ? self : this);
