-- Issue 14 §3.12: examples/openresty/nginx.conf itself, run as shipped
-- (only its port changed): every error nginx answers on its own is JSON
-- with its status, an out-of-range `from` is a 400, and a flood of slow
-- clients from one address is cut off by limit_conn while others are
-- served. Skips only when nginx is not installed.
local server_mod = require "support.nginx_server"
local http = require "support.http"
local socket = require "socket"
local cjson = require "cjson"

local NGINX = server_mod.find_nginx()
if not NGINX or not server_mod.module_lines(NGINX) then
  describe("examples/openresty/nginx.conf", function()
    it("is skipped: nginx or its Lua module is not installed", function()
      pending("install nginx and libnginx-mod-http-lua to run these")
    end)
  end)
  return
end

local sh = server_mod.sh

-- Starts the example configuration in a scratch prefix, as run.sh does.
local function start_example()
  local repo, build = server_mod.cwd(), server_mod.build_dir()
  local dir = server_mod.mktemp_dir("example")
  assert(sh("mkdir -p '" .. dir .. "/conf' '" .. dir .. "/logs' '" .. dir .. "/tmp'") == 0)
  local f = assert(io.open(dir .. "/conf/lua_paths.conf", "w"))
  f:write(('lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;;";\nlua_package_cpath "%s/?.so;;";\n')
          :format(repo, repo, build))
  f:close()
  local _, uid = sh("id -u")
  local user = uid:match("^0%s*$") and " -g 'user root;'" or ""
  for _ = 1, 5 do
    local port = http.free_port()
    assert(sh(("sed 's/127\\.0\\.0\\.1:8089/127.0.0.1:%d/' examples/openresty/nginx.conf > '%s/conf/nginx.conf'")
              :format(port, dir)) == 0)
    local status, out = sh(("'%s' -p '%s/' -e logs/error.log -c conf/nginx.conf%s")
                           :format(NGINX, dir, user), true)
    if status == 0 then
      for _ = 1, 100 do
        local c = http.connect("127.0.0.1", port, 1)
        if c then
          c:close()
          return { port = port, dir = dir }
        end
        http.sleep(0.05)
      end
    elseif not out:find("in use", 1, true) then
      error("the example nginx.conf did not start: " .. out)
    end
  end
  error("the example nginx.conf did not start")
end

local function stop(server)
  local pf = io.open(server.dir .. "/logs/nginx.pid")
  if pf then
    local pid = pf:read("*l")
    pf:close()
    os.execute("kill -QUIT " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not server_mod.exists(server.dir .. "/logs/nginx.pid") then break end
      http.sleep(0.05)
    end
  end
  sh("rm -rf '" .. server.dir .. "'")
end

describe("examples/openresty/nginx.conf", function()
  local server
  setup(function() server = start_example() end)
  teardown(function() if server then stop(server) end end)

  -- One request as raw bytes on a fresh connection: status, body, headers.
  local function raw(bytes)
    local c = assert(http.connect("127.0.0.1", server.port, 5))
    local status, body, headers = c:raw(bytes)
    c:close()
    assert(status, body)
    return status, body, headers
  end

  local function get(target)
    return raw("GET " .. target .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  end

  local function assert_json_error(status, body, headers, want_status, want_code)
    assert.are.equal(want_status, status, body)
    assert.are.equal("application/json", headers["content-type"])
    local doc = cjson.decode(body)
    assert.are.equal(want_code, doc.errcode, body)
    assert.is_string(doc.error)
  end

  local long = "/_roomstate/rooms/" .. string.rep("a", 20000)
  local cases = {
    { "a path above the root", "GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 400, "BAD_REQUEST" },
    { "%00 in the path", "GET /_roomstate/rooms/%00/state HTTP/1.1\r\nHost: x\r\n\r\n", 400, "BAD_REQUEST" },
    { "a bad escape", "GET /_roomstate/rooms/%zz/state HTTP/1.1\r\nHost: x\r\n\r\n", 400, "BAD_REQUEST" },
    { "a cut escape", "GET /_roomstate/% HTTP/1.1\r\nHost: x\r\n\r\n", 400, "BAD_REQUEST" },
    { "a request line nginx cannot parse", "GARBAGE\r\n\r\n", 400, "BAD_REQUEST" },
    { "a URI over the header buffers (414)", "GET " .. long .. " HTTP/1.1\r\nHost: x\r\n\r\n", 414,
      "URI_TOO_LONG" },
    { "a header over the header buffers", "GET /_roomstate/rooms HTTP/1.1\r\nHost: x\r\nX-Big: "
      .. string.rep("b", 20000) .. "\r\n\r\n", 400, "BAD_REQUEST" },
    { "a path outside the API", "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", 404, "NOT_FOUND" },
    { "a .. that stays under the root", "GET /_roomstate/../x HTTP/1.1\r\nHost: x\r\n\r\n", 404,
      "NOT_FOUND" },
    { "the error page itself", "GET /_roomstate_error HTTP/1.1\r\nHost: x\r\n\r\n", 404, "NOT_FOUND" },
    { "a body over client_max_body_size", "POST /_roomstate/rooms/%21r%3Ax/events HTTP/1.1\r\n"
      .. "Host: x\r\nContent-Length: 2000000\r\n\r\n", 413, "TOO_LARGE" },
  }
  for _, case in ipairs(cases) do
    it("answers " .. case[1] .. " in JSON with status " .. case[3], function()
      local status, body, headers = raw(case[2])
      assert_json_error(status, body, headers, case[3], case[4])
    end)
  end

  it("answers an out-of-range from on GET /outputs with a 400, not a 500", function()
    for _, from in ipairs({ "99999999999999999999", "9007199254740992", string.rep("9", 400) }) do
      local status, body, headers = get("/_roomstate/outputs?from=" .. from)
      assert_json_error(status, body, headers, 400, "BAD_REQUEST")
      assert.is_truthy(body:find("from must be an integer", 1, true), body)
    end
    local status, body = get("/_roomstate/outputs?from=9007199254740991")
    assert.are.equal(200, status, body)
    assert.are.equal("[]", body)
  end)

  it("holds a slow-body flood from one address to 64 connections and serves others", function()
    local flood, n = {}, 80
    for i = 1, n do
      local s = assert(socket.tcp())
      s:settimeout(2)
      assert(s:bind("127.0.0.2", 0))
      assert(s:connect("127.0.0.1", server.port))
      -- a header, then a body that never comes
      assert(s:send("POST /_roomstate/rooms/%21r%3Ax/events HTTP/1.1\r\nHost: x\r\n"
                    .. "Content-Length: 1000\r\n\r\n{"))
      flood[i] = s
    end
    -- the connections over the limit are answered at once; the rest wait
    local refused, deadline = {}, socket.gettime() + 3
    while #refused < n - 64 and socket.gettime() < deadline do
      local ready = socket.select(flood, nil, 0.2)
      for _, s in ipairs(ready) do
        if not refused[s] then
          refused[s] = true
          refused[#refused + 1] = s
        end
      end
    end
    socket.select(flood, nil, 0.3) -- any further answer would show here
    local ready = socket.select(flood, nil, 0)
    assert.are.equal(n - 64, #ready, "connections answered at once")
    local c = http.connect("127.0.0.1", server.port, 5)
    local status, body = c:request("GET", "/_roomstate/rooms")
    c:close()
    assert.are.equal(200, status, body) -- another address is served meanwhile
    for _, s in ipairs(refused) do
      local line = s:receive("*l")
      assert.is_truthy(line and line:match("^HTTP/1%.1 429 "), line)
      local headers = {}
      for h in function() local l = s:receive("*l"); if l ~= "" then return l end end do
        local k, v = h:match("^([^:]+):%s*(.*)$")
        headers[k:lower()] = v
      end
      assert.are.equal("application/json", headers["content-type"])
      local len = tonumber(headers["content-length"])
      local doc = cjson.decode((assert(s:receive(len), "no body of " .. tostring(len))))
      assert.are.equal("LIMIT_EXCEEDED", doc.errcode)
    end
    for _, s in ipairs(flood) do s:close() end
  end)
end)
