-- Starts and stops a real nginx for the specs: its own prefix directory
-- under a temporary directory, a free loopback port, several workers, the
-- roomstate modules of this checkout and the C module of the build
-- directory the specs run with.
local http = require "support.http"

local _M = {}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end
_M.exists = exists

-- sh(cmd [, keep_preload]) -> exit status, output (stdout and stderr).
-- Helper commands run without LD_PRELOAD: the ASan runs preload libasan,
-- under which some tools (ps) hang. Commands that load the module under
-- test (nginx, the CLI) keep it.
local function sh(cmd, keep_preload)
  if not keep_preload then cmd = "unset LD_PRELOAD; " .. cmd end
  local p = io.popen(cmd .. " 2>&1; echo \"__exit:$?\"")
  local out = p:read("*a")
  p:close()
  local status = tonumber(out:match("__exit:(%d+)%s*$"))
  return status, (out:gsub("__exit:%d+%s*$", ""))
end
_M.sh = sh

function _M.cwd()
  local p = io.popen("pwd")
  local d = p:read("*l")
  p:close()
  return d
end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return _M.cwd() .. "/" .. path:gsub("^%./", "")
end
_M.absolute = absolute

-- The build directory holding roomstate/core.so: $ROOMSTATE_BUILD, else
-- the first package.cpath entry that has it (spec/run puts "$build/?.so"
-- first), else "build".
function _M.build_dir()
  local env = os.getenv("ROOMSTATE_BUILD")
  if env and env ~= "" then return absolute(env) end
  for entry in package.cpath:gmatch("[^;]+") do
    local file = entry:gsub("%?", "roomstate/core")
    if exists(file) then
      local dir = entry:match("^(.*)/%?%.so$")
      if dir then return absolute(dir) end
    end
  end
  return absolute("build")
end

-- nginx's path, or nil when nginx is not installed.
function _M.find_nginx()
  local env = os.getenv("ROOMSTATE_NGINX")
  if env and env ~= "" then return env end
  for _, p in ipairs({ "/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx",
                       "/usr/local/openresty/nginx/sbin/nginx" }) do
    if exists(p) then return p end
  end
  local status, out = sh("command -v nginx")
  if status == 0 and out:match("%S") then return (out:gsub("%s+$", "")) end
  return nil
end

-- The load_module lines nginx needs for Lua, or "" (OpenResty, or the
-- module compiled in); nil, err when the Lua module is missing.
function _M.module_lines(nginx)
  local dir = os.getenv("NGINX_MODULES") or "/usr/share/nginx/modules"
  local lua_mod = dir .. "/ngx_http_lua_module.so"
  if exists(lua_mod) then
    local lines = {}
    if exists(dir .. "/ndk_http_module.so") then
      lines[#lines + 1] = "load_module " .. dir .. "/ndk_http_module.so;"
    end
    lines[#lines + 1] = "load_module " .. lua_mod .. ";"
    return table.concat(lines, "\n")
  end
  local _, out = sh(nginx .. " -V")
  if out:find("lua", 1, true) then return "" end
  return nil, "nginx is installed but its Lua module is not (" .. lua_mod ..
              " is missing): install libnginx-mod-http-lua"
end

function _M.mktemp_dir(tag)
  local status, out = sh("mktemp -d \"${TMPDIR:-/tmp}/roomstate-" .. tag .. ".XXXXXX\"")
  assert(status == 0, "mktemp failed: " .. out)
  return (out:gsub("%s+$", ""))
end

local CONF = [[
%s
worker_processes %d;
daemon on;
master_process on;
pid logs/nginx.pid;
error_log logs/error.log notice;
%s
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path tmp/body;
  lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/?.lua;;";
  lua_package_cpath "%s/?.so;;";
  init_by_lua_block {
%s
  }
  init_worker_by_lua_block { require("roomstate.nginx").init_worker() }
  server {
    listen 127.0.0.1:%d%s;
    client_max_body_size %s;
    client_body_buffer_size %s;
    error_page 413 = @too_large;
    location @too_large {
      default_type application/json;
      return 413 '{"errcode":"TOO_LARGE","error":"TOO_LARGE: the body is larger than client_max_body_size"}';
    }
    location %s/ {
      content_by_lua_block { require("roomstate.nginx").serve() }
    }
    location / { return 404; }
  }
}
]]

-- start{ init = "Lua code for init_by_lua", workers = 2, prefix = "/v1",
--        body_size = "1m", reuseport = true } -> server | nil, err
-- reuseport: a listening socket per worker, so the kernel spreads new
-- connections over the workers; without it Linux wakes one waiting worker
-- per connection, often the same one, and a spec that must reach every
-- worker may find only one (seen under load).
-- server: { port, dir, url(path), stop(), log() }
function _M.start(opts)
  local nginx = _M.find_nginx()
  if not nginx then return nil, "nginx is not installed" end
  local modules, err = _M.module_lines(nginx)
  if not modules then return nil, err end
  local repo = _M.cwd()
  local build = _M.build_dir()
  local dir = _M.mktemp_dir("nginx")
  assert(sh("mkdir -p '" .. dir .. "/conf' '" .. dir .. "/logs' '" .. dir .. "/tmp'") == 0)
  -- As root, workers would run as nobody and could not write the database.
  local _, uid = sh("id -u")
  local user = uid:match("^0%s*$") and "user root;" or ""
  local last_err
  for _ = 1, 5 do -- the free port may be taken in between: try again
    local port = http.free_port()
    local conf = string.format(CONF, modules, opts.workers or 2, user, repo, repo, repo, build,
                               opts.init, port, opts.reuseport and " reuseport" or "",
                               opts.body_size or "1m", opts.body_size or "1m",
                               opts.prefix or "/v1")
    local f = assert(io.open(dir .. "/conf/nginx.conf", "w"))
    f:write(conf)
    f:close()
    local status, out = sh(string.format("'%s' -p '%s/' -e logs/error.log -c conf/nginx.conf",
                                         nginx, dir), true)
    if status == 0 then
      local server = { port = port, dir = dir, nginx = nginx, prefix = opts.prefix or "/v1" }
      function server.url(path) return server.prefix .. path end
      function server.log()
        local lf = io.open(dir .. "/logs/error.log")
        if not lf then return "" end
        local text = lf:read("*a")
        lf:close()
        return text
      end
      function server.pid()
        local pf = io.open(dir .. "/logs/nginx.pid")
        if not pf then return nil end
        local pid = tonumber(pf:read("*l"))
        pf:close()
        return pid
      end
      -- The master's children (its workers), from /proc: no ps needed.
      function server.workers()
        local pid = server.pid()
        local cf = pid and io.open(string.format("/proc/%d/task/%d/children", pid, pid))
        if not cf then return {} end
        local list = {}
        for w in cf:read("*a"):gmatch("%d+") do list[#list + 1] = tonumber(w) end
        cf:close()
        return list
      end
      function server.stop()
        local pid = server.pid()
        if pid then
          os.execute("kill -QUIT " .. pid .. " 2>/dev/null")
          for _ = 1, 100 do
            if not exists(dir .. "/logs/nginx.pid") then break end
            http.sleep(0.05)
          end
          if exists(dir .. "/logs/nginx.pid") then
            os.execute("kill -TERM " .. pid .. " 2>/dev/null")
            http.sleep(0.5)
          end
        end
      end
      function server.cleanup()
        server.stop()
        if os.getenv("ROOMSTATE_KEEP") ~= "1" then sh("rm -rf '" .. dir .. "'") end
      end
      -- Wait until it answers.
      for _ = 1, 100 do
        local c = http.connect("127.0.0.1", port, 1)
        if c then
          c:close()
          return server
        end
        http.sleep(0.05)
      end
      server.cleanup()
      return nil, "nginx started but does not answer on port " .. port
    end
    last_err = out .. "\n" .. (io.open(dir .. "/logs/error.log") and
                              io.open(dir .. "/logs/error.log"):read("*a") or "")
    if not last_err:find("in use", 1, true) then break end
  end
  sh("rm -rf '" .. dir .. "'")
  return nil, "nginx did not start: " .. tostring(last_err)
end

return _M
