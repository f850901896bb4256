-- Runs SQL on a database file behind the library's back, to corrupt a copy
-- on purpose: through LuaJIT's FFI and libsqlite3, or else the sqlite3 CLI.
local _M = {}

local ok_ffi, ffi = pcall(require, "ffi")
local lib
if ok_ffi then
  pcall(ffi.cdef, [[
    typedef struct sqlite3 sqlite3;
    int sqlite3_open(const char *filename, sqlite3 **db);
    int sqlite3_exec(sqlite3 *db, const char *sql, void *cb, void *arg, char **errmsg);
    int sqlite3_close(sqlite3 *db);
    const char *sqlite3_errmsg(sqlite3 *db);
  ]])
  for _, name in ipairs({ "sqlite3", "libsqlite3.so.0" }) do
    local ok, l = pcall(ffi.load, name)
    if ok then lib = l break end
  end
end

-- exec(path, sql) -> true | nil, err
function _M.exec(path, sql)
  if lib then
    local pdb = ffi.new("sqlite3*[1]")
    if lib.sqlite3_open(path, pdb) ~= 0 then return nil, "cannot open " .. path end
    local rc = lib.sqlite3_exec(pdb[0], sql, nil, nil, nil)
    local err = rc ~= 0 and ffi.string(lib.sqlite3_errmsg(pdb[0])) or nil
    lib.sqlite3_close(pdb[0])
    if err then return nil, err end
    return true
  end
  local f = assert(io.open(path .. ".sql", "w"))
  f:write(sql)
  f:close()
  local p = io.popen("sqlite3 '" .. path .. "' < '" .. path .. ".sql' 2>&1; echo \"__exit:$?\"")
  local out = p:read("*a")
  p:close()
  os.remove(path .. ".sql")
  if out:match("__exit:0%s*$") then return true end
  return nil, out
end

return _M
