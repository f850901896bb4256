-- A small HTTP/1.1 client over LuaSocket for the nginx specs and the load
-- client: keep-alive, Content-Length or chunked bodies, no redirects.
local socket = require "socket"

local tonumber, pairs, setmetatable, tostring = tonumber, pairs, setmetatable, tostring
local string_format, string_lower, string_match = string.format, string.lower, string.match
local table_concat = table.concat

local _M = {}
local Conn = {}
Conn.__index = Conn

-- http.connect(host, port [, timeout_s]) -> conn | nil, err
function _M.connect(host, port, timeout)
  local sock, err = socket.tcp()
  if not sock then return nil, err end
  sock:settimeout(timeout or 30)
  local ok
  ok, err = sock:connect(host, port)
  if not ok then
    sock:close()
    return nil, err
  end
  sock:setoption("tcp-nodelay", true)
  return setmetatable({ sock = sock, host = host, port = port, timeout = timeout }, Conn)
end

-- conn:request(method, path [, body [, headers]]) -> status, body, headers | nil, err
-- headers: { ["name"] = value }; response header names are lower-case.
function Conn:request(method, path, body, headers)
  local lines = { string_format("%s %s HTTP/1.1", method, path),
                  string_format("Host: %s:%d", self.host, self.port) }
  local has_length = false
  for k, v in pairs(headers or {}) do
    lines[#lines + 1] = k .. ": " .. tostring(v)
    if string_lower(k) == "content-length" or string_lower(k) == "transfer-encoding" then
      has_length = true
    end
  end
  if body and not has_length then lines[#lines + 1] = "Content-Length: " .. #body end
  lines[#lines + 1] = ""
  lines[#lines + 1] = body or ""
  local ok, err = self.sock:send(table_concat(lines, "\r\n"))
  if not ok then return nil, "send: " .. tostring(err) end
  return self:response(method)
end

-- Sends raw bytes (for malformed requests) and reads one response.
function Conn:raw(bytes, method)
  local ok, err = self.sock:send(bytes)
  if not ok then return nil, "send: " .. tostring(err) end
  return self:response(method or "GET")
end

function Conn:response(method)
  local sock = self.sock
  local line, err = sock:receive("*l")
  if not line then return nil, "status line: " .. tostring(err) end
  local status = tonumber(string_match(line, "^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "bad status line: " .. line end
  local hdrs = {}
  while true do
    local h
    h, err = sock:receive("*l")
    if not h then return nil, "headers: " .. tostring(err) end
    if h == "" then break end
    local k, v = string_match(h, "^([^:]+):%s*(.-)%s*$")
    if k then hdrs[string_lower(k)] = v end
  end
  local body = ""
  if method == "HEAD" or status == 204 or status == 304 then
    -- no body
  elseif hdrs["transfer-encoding"] and string_lower(hdrs["transfer-encoding"]) == "chunked" then
    local parts = {}
    while true do
      local size_line
      size_line, err = sock:receive("*l")
      if not size_line then return nil, "chunk size: " .. tostring(err) end
      local size = tonumber(string_match(size_line, "^%x+"), 16)
      if not size then return nil, "bad chunk size: " .. size_line end
      if size == 0 then
        repeat
          local t
          t, err = sock:receive("*l")
          if not t then return nil, "trailer: " .. tostring(err) end
        until t == ""
        break
      end
      local chunk
      chunk, err = sock:receive(size)
      if not chunk then return nil, "chunk: " .. tostring(err) end
      parts[#parts + 1] = chunk
      sock:receive("*l")
    end
    body = table_concat(parts)
  elseif hdrs["content-length"] then
    local n = tonumber(hdrs["content-length"])
    if n > 0 then
      body, err = sock:receive(n)
      if not body then return nil, "body: " .. tostring(err) end
    end
  else
    body, err = sock:receive("*a")
    body = body or ""
    self.closed = true
  end
  if hdrs.connection and string_lower(hdrs.connection) == "close" then self.closed = true end
  return status, body, hdrs
end

function Conn:close()
  self.sock:close()
  self.closed = true
end

-- A connection that reconnects when the server closed the last one.
function _M.client(host, port, timeout)
  local c = { host = host, port = port, timeout = timeout }
  function c:request(method, path, body, headers)
    if not self.conn or self.conn.closed then
      local conn, err = _M.connect(self.host, self.port, self.timeout)
      if not conn then return nil, "connect: " .. tostring(err) end
      self.conn = conn
    end
    local status, rbody, hdrs = self.conn:request(method, path, body, headers)
    if not status then
      self.conn:close()
      self.conn = nil
    end
    return status, rbody, hdrs
  end
  function c:close()
    if self.conn then self.conn:close() end
    self.conn = nil
  end
  return c
end

-- s percent-encoded for a path segment: all but unreserved characters.
function _M.enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- A free TCP port on the loopback interface (bound and released).
function _M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

_M.sleep = socket.sleep
_M.gettime = socket.gettime
return _M
