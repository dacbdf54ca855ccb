-- scrapewarden forward-auth for HAProxy 2.5+ (Debian 12 ships 2.6), with no extra modules:
-- HAProxy's built-in Lua HTTP client (core.httpclient) asks `scrapewarden authz` about every
-- request, and refusals (429 + Retry-After, 403, the challenge page, or a 302 to
-- --challenge-url) are answered by HAProxy with authz's status, headers and body. Route /.sw/
-- to authz without this action (see haproxy.cfg): the challenge page's answer goes there.
--
--   global
--       lua-load /etc/haproxy/scrapewarden.lua
--   frontend web
--       http-request lua.scrapewarden
--
-- Settings (environment of the haproxy process, or `setenv` in the global section):
--   SCRAPEWARDEN_AUTHZ       authz URL               (default http://127.0.0.1:9100/auth)
--   SCRAPEWARDEN_TIMEOUT_MS  how long to wait        (default 500)
--   SCRAPEWARDEN_FAIL_OPEN   "no" to refuse with 503 when authz cannot be reached (default: let through)
--
-- The verdict is left in txn.scrapewarden_action and txn.scrapewarden_score for the log format.

local authz_url = os.getenv("SCRAPEWARDEN_AUTHZ") or "http://127.0.0.1:9100/auth"
local timeout_ms = tonumber(os.getenv("SCRAPEWARDEN_TIMEOUT_MS") or "") or 500
local fail_open = (os.getenv("SCRAPEWARDEN_FAIL_OPEN") or "yes") ~= "no"

-- Not forwarded: framing headers of the client's request, and the description headers a client
-- might try to smuggle in (we set our own below).
local skipped = {
  ["host"] = true, ["content-length"] = true, ["transfer-encoding"] = true, ["connection"] = true,
  ["expect"] = true, ["upgrade"] = true, ["x-original-uri"] = true, ["x-original-method"] = true,
  ["x-original-proto"] = true, ["x-real-ip"] = true, ["x-scrapewarden-proxy"] = true,
  ["x-scrapewarden-header-order"] = true,
}
-- Not copied from authz's refusal into the reply: HAProxy frames the reply itself.
local hop_by_hop = {
  ["content-length"] = true, ["transfer-encoding"] = true, ["connection"] = true, ["keep-alive"] = true,
}

local function first(values)
  if values == nil then return nil end
  return values[0] or values[1]
end

core.register_action("scrapewarden", { "http-req" }, function(txn)
  local headers, order = {}, {}
  -- req.hdrs keeps the client's header order; the Lua client sends a table, which does not, so
  -- the order travels in its own header (authz uses it for the client fingerprint).
  local raw = txn.f:req_hdrs() or ""
  for line in raw:gmatch("[^\r\n]+") do
    local name, value = line:match("^([^:%s]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      if headers[name] == nil then order[#order + 1] = name end
      if not skipped[name] then
        local list = headers[name] or {}
        list[#list + 1] = value
        headers[name] = list
      end
    end
  end
  local tls = txn.f:ssl_fc()
  headers["x-original-method"] = { txn.f:method() }
  headers["x-original-uri"] = { txn.f:pathq() }
  headers["x-original-proto"] = { (tls == true or tls == 1) and "https" or "http" }
  headers["x-real-ip"] = { txn.f:src() }
  headers["x-scrapewarden-proxy"] = { "haproxy" }
  headers["x-scrapewarden-header-order"] = { table.concat(order, ",") }

  local ok, response = pcall(function()
    return core.httpclient():get{ url = authz_url, headers = headers, timeout = timeout_ms }
  end)
  if not ok or type(response) ~= "table" or not response.status or response.status == 0 then
    txn:set_var("txn.scrapewarden_action", "unavailable")
    if fail_open then return end
    txn:done(txn:reply{ status = 503, body = "Service temporarily unavailable\n" })
    return
  end
  local answer_headers = response.headers or {}
  txn:set_var("txn.scrapewarden_score", first(answer_headers["x-scrapewarden-score"]) or "")
  txn:set_var("txn.scrapewarden_action", first(answer_headers["x-scrapewarden-action"]) or "")
  if response.status >= 200 and response.status < 300 then
    return
  end
  local reply_headers = {}
  for name, values in pairs(answer_headers) do
    if not hop_by_hop[name] then
      local list = {}
      for _, value in pairs(values) do list[#list + 1] = value end
      reply_headers[name] = list
    end
  end
  txn:done(txn:reply{ status = response.status, headers = reply_headers, body = response.body or "" })
end)
