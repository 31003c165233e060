-- reactor.balancer: live routes and upstream membership for reactor-agent
-- (SPEC.md §7).
--
-- The agent renders this file into init_by_lua_block (so it is tested by
-- `nginx -t` and swapped atomically with the config that uses it) and
-- registers it as package.loaded["reactor.balancer"].
--
-- Shared dict `reactor_members`:
--   "m:<endpoint>" -> member list, "host:port=weight host:port=weight ..."
--   "v:<endpoint>" -> version of that list (bumped on every change)
--   "r:<listen>"   -> the routes of one nginx server (listen key "port",
--                     "host:port" or "[v6]:port"), one per line:
--                     "<endpoint> <path> <balance> <keepalive> <redirect|->"
--   "rv:<listen>"  -> version of that table
--   holding (scale to zero, see hold() below):
--   "h:<endpoint>" -> requests held now
--   "w:<endpoint>" -> ngx.now() of the hold's first request: the wake is
--                     open (expires after hold_timeout, deleted once served)
--   "ws"           -> sequence of wake notices; "wq:<seq>" -> its endpoint
--   "hk", "hk:<i>" -> endpoints with hold statistics, in order of first hold
--   "hs:<endpoint>:<field>" -> statistics (wakes served timeout rejected
--                     wait_ms b1..bN b_inf): what GET /holds reports
-- Each worker caches the parsed lists and tables and re-parses one only when
-- its version changes.
--
-- Routing (upstreams = dynamic): every server has one location that calls
-- route(listen, any) in the access phase: the longest path prefix among the
-- routes of the server's own address wins, then those of the same port on
-- every address ("exact host match first"); no match is a 404. The chosen
-- route's endpoint and balance mode go to the shared upstream's balancer
-- through ngx.ctx. A route with no members answers through
-- M.on_unavailable(route): 301 to `redirect` or 503, or, for a route with a
-- hold (an endpoint that may scale: running, max_instances >= 1), a hold of
-- up to hold_timeout until a member is there (scale to zero). A hold never
-- blocks the worker: it waits with ngx.sleep on shared-dict state. The
-- first held request of an endpoint opens a wake notice (one per endpoint
-- per hold, not per request); the agent long-polls GET /wakes on the
-- control socket and hears it at once.
--
-- Balance modes (per worker; workers do not share balancer state):
--   round_robin  smooth weighted round robin (nginx's own algorithm).
--   least_conn   fewest requests in flight *in this worker*, divided by
--                weight; ties broken round robin. In-flight counts are
--                taken in the balancer phase and released in the log phase.
--   ip_hash      crc32(remote_addr) over the weight-expanded list.
-- A failed try (proxy_next_upstream error timeout) is retried once on a
-- different member when there is one, and the member that failed is skipped
-- by this worker for FAIL_SKIP seconds (unless every member is failing): a
-- host that vanished costs one connect timeout, not one per request, until
-- its owner takes it out of the membership. Only a try that has a fallback
-- keeps the site's short proxy_connect_timeout (2 s); the last try (a single
-- member, or the retry) waits LAST_CONNECT_TIMEOUT, so a fresh instance whose
-- listen backlog is full (a burst of held requests released at once) is
-- reached after the kernel's SYN retransmissions instead of answering 504.
local M = {}

local DICT = "reactor_members"
local NAME_RE = "^[a-z0-9][a-z0-9_-]*$"

local cache = {}    -- endpoint -> { version, peers = { {addr, host, port, weight, current} }, next }
local inflight = {} -- "host:port" -> requests in flight in this worker
local failed = {}   -- "host:port" -> ngx.now() until which this worker skips it
local FAIL_SKIP = 10
local LAST_CONNECT_TIMEOUT = 10 -- seconds: SYN retransmissions at 1, 3 and 7 s

-- Parses "host:port=weight ..." into peers; nil, err on a malformed token.
local function parse(list)
  local peers = {}
  for tok in string.gmatch(list, "%S+") do
    local host, port, weight = string.match(tok, "^(.+):(%d+)=(%d+)$")
    if not host then
      return nil, "malformed member " .. tok
    end
    local v6 = string.match(host, "^%[([0-9a-fA-F:.]+)%]$")
    if v6 then
      host = v6
    elseif not string.match(host, "^[0-9a-zA-Z.-]+$") then
      return nil, "malformed host in " .. tok
    end
    port, weight = tonumber(port), tonumber(weight)
    if port < 1 or port > 65535 or weight < 1 then
      return nil, "bad port or weight in " .. tok
    end
    peers[#peers + 1] = { addr = host .. ":" .. port, host = host, port = port,
                          weight = weight, current = 0 }
  end
  return peers
end

local function entry(name)
  local dict = ngx.shared[DICT]
  local version = dict:get("v:" .. name)
  if not version then
    return nil
  end
  local c = cache[name]
  if c and c.version == version then
    return c
  end
  local peers, err = parse(dict:get("m:" .. name) or "")
  if not peers then
    ngx.log(ngx.ERR, "reactor: endpoint ", name, ": ", err)
    peers = {}
  end
  local total = 0
  for _, p in ipairs(peers) do
    total = total + p.weight
  end
  c = { version = version, peers = peers, total = total, next = 1 }
  cache[name] = c
  return c
end

--- True iff the endpoint has at least one member.
function M.has_members(name)
  local c = entry(name)
  return c ~= nil and #c.peers > 0
end

local function pick_round_robin(c, tried)
  local best, total = nil, 0
  for _, p in ipairs(c.peers) do
    if not tried[p.addr] then
      p.current = p.current + p.weight
      total = total + p.weight
      if best == nil or p.current > best.current then
        best = p
      end
    end
  end
  if best then
    best.current = best.current - total
  end
  return best
end

local function pick_least_conn(c, tried)
  local n = #c.peers
  local best, best_load = nil, nil
  local start = c.next
  for i = 0, n - 1 do
    local p = c.peers[(start + i - 1) % n + 1]
    if not tried[p.addr] then
      local load = ((inflight[p.addr] or 0) + 1) / p.weight
      if best == nil or load < best_load then
        best, best_load = p, load
      end
    end
  end
  c.next = start % n + 1
  return best
end

local function pick_ip_hash(c, tried)
  local h = ngx.crc32_short(ngx.var.remote_addr or "") % c.total
  local first
  for i, p in ipairs(c.peers) do
    if h < p.weight then
      first = i
      break
    end
    h = h - p.weight
  end
  local n = #c.peers
  for i = 0, n - 1 do
    local p = c.peers[(first + i - 1) % n + 1]
    if not tried[p.addr] then
      return p
    end
  end
  return nil
end

local pickers = {
  round_robin = pick_round_robin,
  least_conn = pick_least_conn,
  ip_hash = pick_ip_hash,
}

--- balancer_by_lua: chooses the peer for this try.
function M.balance(name, mode)
  local balancer = require("ngx.balancer")
  local c = entry(name)
  if not c or #c.peers == 0 then
    ngx.log(ngx.ERR, "reactor: endpoint ", name, " has no members")
    return ngx.exit(ngx.ERROR)
  end
  local ctx = ngx.ctx
  local tried = ctx.reactor_tried
  local now = ngx.now()
  if tried == nil then
    tried = {}
    local skipped = 0
    for _, peer in ipairs(c.peers) do
      local until_ = failed[peer.addr]
      if until_ and until_ > now then
        tried[peer.addr] = true
        skipped = skipped + 1
      elseif until_ then
        failed[peer.addr] = nil
      end
    end
    if skipped >= #c.peers then
      tried = {}
    end
    ctx.reactor_tried = tried
    ctx.reactor_picked = {}
    if #c.peers > 1 then
      balancer.set_more_tries(1)
    end
  else
    -- A retry: the last try's member failed.
    local picked = ctx.reactor_picked
    if #picked > 0 then
      failed[picked[#picked]] = now + FAIL_SKIP
    end
  end
  if #ctx.reactor_picked >= #c.peers then
    -- Every member was tried; start over rather than fail outright.
    tried = {}
  end
  local p = (pickers[mode] or pick_round_robin)(c, tried)
  if not p then
    p = c.peers[1]
  end
  tried[p.addr] = true
  local picked = ctx.reactor_picked
  picked[#picked + 1] = p.addr
  inflight[p.addr] = (inflight[p.addr] or 0) + 1
  local ok, err = balancer.set_current_peer(p.host, p.port)
  if not ok then
    ngx.log(ngx.ERR, "reactor: set_current_peer ", p.addr, ": ", err)
    return ngx.exit(ngx.ERROR)
  end
  if #c.peers == 1 or #picked > 1 then
    ok, err = balancer.set_timeouts(LAST_CONNECT_TIMEOUT)
    if not ok then
      ngx.log(ngx.ERR, "reactor: set_timeouts: ", err)
    end
  end
end

--- log_by_lua: releases the in-flight counts taken by balance().
function M.release()
  local picked = ngx.ctx.reactor_picked
  if not picked then
    return
  end
  for _, addr in ipairs(picked) do
    local n = (inflight[addr] or 1) - 1
    inflight[addr] = n > 0 and n or nil
  end
  ngx.ctx.reactor_picked = nil
end

-- Routes ---------------------------------------------------------------------

local LISTEN_RE = "^[%w.:%[%]-]+$"
local PATH_RE = "^/[%w/._~%%+:@!,=-]*$"
local REDIRECT_RE = "^https?://[%w._~:/?%[%]@!&*+,=%%-]+$"
local BALANCES = { round_robin = true, least_conn = true, ip_hash = true }
local MAX_HOLD_MS = 600000 -- [loadbalancer:nginx] hold_timeout <= 10m
local MAX_HELD = 100000    -- hold_max <= 100000

local tables = {} -- listen -> { version, routes = { {endpoint, path, balance, keepalive, redirect} } }

-- Parses a route table; nil, err on a malformed line (nothing is stored then).
local function parse_routes(text)
  local routes = {}
  for line in string.gmatch(text, "[^\n]+") do
    local name, path, balance, keepalive, redirect, hold_ms, hold_max =
      string.match(line, "^(%S+) (%S+) (%S+) (%d+) (%S+) (%d+) (%d+)$")
    if not name then
      name, path, balance, keepalive, redirect =
        string.match(line, "^(%S+) (%S+) (%S+) (%d+) (%S+)$")
      hold_ms, hold_max = "0", "0"
    end
    if not name then
      return nil, "malformed route " .. line
    end
    if #hold_ms > 7 or #hold_max > 6 or tonumber(hold_ms) > MAX_HOLD_MS or tonumber(hold_max) > MAX_HELD then
      return nil, "bad hold in " .. line
    end
    if not string.match(name, NAME_RE) or #name > 63 then
      return nil, "bad endpoint name in " .. line
    end
    if not string.match(path, PATH_RE) or #path > 1024 then
      return nil, "bad path in " .. line
    end
    if not BALANCES[balance] then
      return nil, "bad balance in " .. line
    end
    if redirect == "-" then
      redirect = nil
    elseif not string.match(redirect, REDIRECT_RE) or #redirect > 2048 then
      return nil, "bad redirect in " .. line
    end
    routes[#routes + 1] = { endpoint = name, path = path, balance = balance,
                            keepalive = tonumber(keepalive), redirect = redirect,
                            hold_ms = tonumber(hold_ms), hold_max = tonumber(hold_max) }
  end
  -- Longest prefix first; equal lengths by path so lookups are deterministic.
  table.sort(routes, function(a, b)
    if #a.path ~= #b.path then
      return #a.path > #b.path
    end
    return a.path < b.path
  end)
  return routes
end

local function route_table(listen)
  local dict = ngx.shared[DICT]
  local version = dict:get("rv:" .. listen)
  if not version then
    return nil
  end
  local t = tables[listen]
  if t and t.version == version then
    return t.routes
  end
  local routes, err = parse_routes(dict:get("r:" .. listen) or "")
  if not routes then
    ngx.log(ngx.ERR, "reactor: routes of ", listen, ": ", err)
    routes = {}
  end
  for _, r in ipairs(routes) do
    r.listen, r.version = listen, version
  end
  tables[listen] = { version = version, routes = routes }
  return routes
end

-- Whether a held request's route still holds: false once its table changed
-- so that its endpoint holds no more (stopped, paused, removed): the held
-- requests get their answer at once, as new ones do. One dict read while
-- the table is unchanged.
local function still_holds(route)
  if route.released then
    return false
  end
  local version = ngx.shared[DICT]:get("rv:" .. route.listen)
  if version == route.version then
    return true
  end
  local holds = false
  for _, r in ipairs(route_table(route.listen) or {}) do
    if r.endpoint == route.endpoint and r.path == route.path then
      holds = r.hold_ms > 0
      break
    end
  end
  if holds then
    route.version = version
  else
    route.released = true
  end
  return holds
end

-- The longest route whose path prefixes `uri`; a request for the path
-- without its trailing slash ("/api" for "/api/") is redirected to it, as
-- nginx does for a prefix location with proxy_pass.
local function match(routes, uri)
  if not routes then
    return nil
  end
  for _, r in ipairs(routes) do
    local p = r.path
    if string.sub(uri, 1, #p) == p then
      return r
    end
    if #uri + 1 == #p and string.byte(p, #p) == 47 and uri == string.sub(p, 1, #uri) then
      return r, true
    end
  end
  return nil
end

-- Holding ---------------------------------------------------------------------

-- Upper bounds (seconds) of the wait histogram GET /holds reports.
local HOLD_BUCKETS = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }
local NOTICE_TTL = 60     -- s a wake notice stays readable
local NOTICES_READ = 1000 -- at most this many notices per GET /wakes

local function stat(dict, name, field, n)
  dict:incr("hs:" .. name .. ":" .. field, n or 1, 0)
end

-- Queues a notice the agent's long poll picks up.
local function notify(dict, name)
  local seq = dict:incr("ws", 1, 0)
  if seq then
    dict:set("wq:" .. seq, name, NOTICE_TTL)
  end
end

local function observe(dict, name, waited)
  stat(dict, name, "wait_ms", math.floor(waited * 1000 + 0.5))
  for i, le in ipairs(HOLD_BUCKETS) do
    if waited <= le then
      return stat(dict, name, "b" .. i)
    end
  end
  stat(dict, name, "b_inf")
end

-- Holds the request until the route's endpoint has a member (true) or
-- hold_timeout passes (false). Nil when hold_max requests are held already.
local function hold(route)
  local dict = ngx.shared[DICT]
  local name = route.endpoint
  if dict:add("hk?" .. name, true) then
    local i = dict:incr("hk", 1, 0)
    dict:set("hk:" .. i, name)
  end
  local held = dict:incr("h:" .. name, 1, 0)
  if not held or held > route.hold_max then
    if held then
      dict:incr("h:" .. name, -1, 0)
    end
    stat(dict, name, "rejected")
    return nil
  end
  local start = ngx.now()
  local timeout = route.hold_ms / 1000
  if dict:add("w:" .. name, start, timeout) then
    -- The first held request wakes the endpoint; the others ride along.
    stat(dict, name, "wakes")
    notify(dict, name)
  elseif held >= 2 and bit.band(held, held - 1) == 0 then
    -- A burst: tell the agent the count at 2, 4, 8, ... (held requests
    -- count toward the first scale decision).
    notify(dict, name)
  end
  local deadline = start + timeout
  local delay = 0.002
  local served = false
  while true do
    if M.has_members(name) then
      served = true
      break
    end
    local now = ngx.now()
    if now >= deadline or ngx.worker.exiting() or not still_holds(route) then
      break
    end
    -- At least 1 ms: ngx.sleep(0) only yields, and ngx.now() would not
    -- move (a busy loop that never reaches the deadline).
    ngx.sleep(math.max(0.001, math.min(delay, deadline - now)))
    delay = math.min(delay * 2, 0.02)
  end
  dict:incr("h:" .. name, -1, 0)
  observe(dict, name, ngx.now() - start)
  if served then
    stat(dict, name, "served")
    dict:delete("w:" .. name)
    return true
  end
  stat(dict, name, "timeout")
  return false
end

--- The answer when a route's endpoint has no member: with a hold, waits
--- until one is there (then returns true: the request proceeds); otherwise,
--- or past hold_timeout, 301 to `redirect` or 503 (with Retry-After after a
--- hold). Returns what access_by_lua returns when it answers.
function M.on_unavailable(route)
  if route.hold_ms > 0 then
    local served = hold(route)
    if served then
      return true
    end
    ngx.header["Retry-After"] = served == nil and "1" or tostring(math.max(1, math.ceil(route.hold_ms / 1000)))
  end
  if route.redirect then
    return ngx.redirect(route.redirect, 301)
  end
  return ngx.exit(503)
end

--- access_by_lua of every routed server: `listen` is the server's listen
--- key, `any` the same port on every address (nil when they are the same).
function M.route(listen, any)
  local uri = ngx.var.uri
  local r, slash = match(route_table(listen), uri)
  if not r and any then
    r, slash = match(route_table(any), uri)
  end
  if not r then
    return ngx.exit(404)
  end
  if slash then
    local args = ngx.var.is_args .. (ngx.var.args or "")
    return ngx.redirect(r.path .. args, 301)
  end
  if not M.has_members(r.endpoint) then
    local answer = M.on_unavailable(r)
    if answer ~= true then
      return answer
    end
  end
  ngx.ctx.reactor_route = r
  ngx.var.reactor_proxy_host = "reactor_" .. r.endpoint
  if r.keepalive > 0 then
    ngx.var.reactor_connection = ""
  end
end

--- balancer_by_lua of the shared routed upstream.
function M.balance_route()
  local r = ngx.ctx.reactor_route
  if not r then
    ngx.log(ngx.ERR, "reactor: balancer without a route")
    return ngx.exit(ngx.ERROR)
  end
  return M.balance(r.endpoint, r.balance)
end

local function store_routes(listen, text)
  if not string.match(listen, LISTEN_RE) or #listen > 300 then
    return false, "bad listen key " .. listen
  end
  local routes, err = parse_routes(text)
  if not routes then
    return false, err
  end
  local dict = ngx.shared[DICT]
  local ok, serr
  if #routes == 0 then
    dict:delete("r:" .. listen)
  else
    ok, serr = dict:set("r:" .. listen, text)
    if not ok then
      return false, serr
    end
  end
  local version, verr = dict:incr("version", 1, 0)
  if not version then
    return false, verr
  end
  ok, serr = dict:set("rv:" .. listen, version)
  if not ok then
    return false, serr
  end
  return true
end

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local path = ngx.req.get_body_file()
    if path then
      local f = io.open(path, "rb")
      if f then
        body = f:read("*a")
        f:close()
      end
    end
  end
  return body or ""
end

--- content_by_lua of the control server's /routes: POST replaces the
--- routes of the server named on the body's first line with the lines that
--- follow (none: the server has no routes); GET ?listen=KEY returns them.
function M.control_routes()
  local method = ngx.req.get_method()
  if method == "GET" then
    local listen = ngx.var.arg_listen or ""
    if not string.match(listen, LISTEN_RE) then
      return ngx.exit(404)
    end
    ngx.print(ngx.shared[DICT]:get("r:" .. listen) or "")
    return
  end
  if method ~= "POST" then
    return ngx.exit(405)
  end
  local body = read_body()
  local listen, rest = string.match(body, "^([^\n]*)\n?(.*)$")
  local ok, err = store_routes(listen or "", rest or "")
  if not ok then
    ngx.status = 400
    ngx.say(err)
    return ngx.exit(400)
  end
  ngx.say("ok")
end

--- init_by_lua: loads the route tables the agent persisted: a line
--- "server <listen>" starts a table, the route lines follow; only tables the
--- dict has none of (see load_file). A missing file is not an error; a
--- malformed table is skipped (and logged).
function M.load_routes(path)
  local f = io.open(path, "rb")
  if not f then
    return
  end
  local listen, lines = nil, {}
  local dict = ngx.shared[DICT]
  local function flush()
    -- On a reload the dict (kept across reloads) holds what was pushed
    -- since the file was written: it wins. The file seeds a fresh nginx.
    if listen and not dict:get("rv:" .. listen) then
      local ok, err = store_routes(listen, table.concat(lines, "\n"))
      if not ok then
        ngx.log(ngx.ERR, "reactor: ", path, ": server ", listen, ": ", err)
      end
    end
  end
  for line in f:lines() do
    local key = string.match(line, "^server (%S+)$")
    if key then
      flush()
      listen, lines = key, {}
    elseif listen and line ~= "" then
      lines[#lines + 1] = line
    end
  end
  flush()
  f:close()
end

--- content_by_lua of the control server's /wakes, the agent's long poll:
--- GET ?since=SEQ&wait=MS answers once a wake notice newer than SEQ is
--- queued, or after MS (at most 30 s). Body: the current sequence on the
--- first line, then "<endpoint> <held now> <wake start, ms since the epoch>"
--- for each endpoint with a notice in (SEQ, current]. Without a usable SEQ
--- (none, or newer than nginx's: nginx restarted) it answers at once with
--- every endpoint holding requests now.
function M.control_wakes()
  if ngx.req.get_method() ~= "GET" then
    return ngx.exit(405)
  end
  local dict = ngx.shared[DICT]
  local arg_since, arg_wait = ngx.var.arg_since, ngx.var.arg_wait
  local since = arg_since and #arg_since <= 15 and string.match(arg_since, "^%d+$") and tonumber(arg_since)
  local wait = arg_wait and #arg_wait <= 6 and string.match(arg_wait, "^%d+$") and tonumber(arg_wait) or 0
  wait = math.min(wait, 30000) / 1000
  local seq = dict:get("ws") or 0
  local names, seen = {}, {}
  local function add(name)
    if name and not seen[name] then
      seen[name] = true
      names[#names + 1] = name
    end
  end
  if not since or since > seq then
    for i = 1, dict:get("hk") or 0 do
      local name = dict:get("hk:" .. i)
      if name and (dict:get("h:" .. name) or 0) > 0 then
        add(name)
      end
    end
  else
    local deadline = ngx.now() + wait
    while seq <= since and ngx.now() < deadline and not ngx.worker.exiting() do
      ngx.sleep(0.005)
      seq = dict:get("ws") or 0
    end
    for i = math.max(since + 1, seq - NOTICES_READ + 1), seq do
      add(dict:get("wq:" .. i))
    end
  end
  local out = { tostring(seq) }
  for _, name in ipairs(names) do
    local since_s = dict:get("w:" .. name) or 0
    out[#out + 1] = name .. " " .. (dict:get("h:" .. name) or 0) .. " " .. math.floor(since_s * 1000)
  end
  ngx.say(table.concat(out, "\n"))
end

--- content_by_lua of the control server's /holds: GET reports, for every
--- endpoint that ever held a request since nginx started, its statistics:
--- first line "le <bucket upper bounds, s>", then one line per endpoint,
--- "<endpoint> <held now> <wakes> <served> <timeout> <rejected> <wait_ms>
--- <b1> ... <bN> <b_inf>" (bucket counts not cumulative).
function M.control_holds()
  if ngx.req.get_method() ~= "GET" then
    return ngx.exit(405)
  end
  local dict = ngx.shared[DICT]
  local le = {}
  for i, b in ipairs(HOLD_BUCKETS) do
    le[i] = tostring(b)
  end
  local out = { "le " .. table.concat(le, " ") }
  for i = 1, dict:get("hk") or 0 do
    local name = dict:get("hk:" .. i)
    if name then
      local function get(field)
        return tostring(dict:get("hs:" .. name .. ":" .. field) or 0)
      end
      local line = { name, tostring(dict:get("h:" .. name) or 0), get("wakes"), get("served"), get("timeout"),
                     get("rejected"), get("wait_ms") }
      for b = 1, #HOLD_BUCKETS do
        line[#line + 1] = get("b" .. b)
      end
      line[#line + 1] = get("b_inf")
      out[#out + 1] = table.concat(line, " ")
    end
  end
  ngx.say(table.concat(out, "\n"))
end

-- Members --------------------------------------------------------------------

local function store(name, list)
  local peers, err = parse(list)
  if not peers then
    return false, err
  end
  local dict = ngx.shared[DICT]
  local ok, serr = dict:set("m:" .. name, list)
  if not ok then
    return false, serr
  end
  local version, verr = dict:incr("version", 1, 0)
  if not version then
    return false, verr
  end
  ok, serr = dict:set("v:" .. name, version)
  if not ok then
    return false, serr
  end
  return true
end

--- content_by_lua of the control server: POST /members/<name> replaces the
--- endpoint's list with the request body; GET returns it.
function M.control(name)
  if not string.match(name, NAME_RE) then
    return ngx.exit(404)
  end
  local method = ngx.req.get_method()
  if method == "GET" then
    ngx.say(ngx.shared[DICT]:get("m:" .. name) or "")
    return
  end
  if method ~= "POST" then
    return ngx.exit(405)
  end
  local ok, err = store(name, read_body())
  if not ok then
    ngx.status = 400
    ngx.say(err)
    return ngx.exit(400)
  end
  ngx.say("ok")
end

--- init_by_lua: loads the lists the agent persisted, one line per endpoint:
--- "<name> host:port=weight ...", for endpoints the dict has no list of
--- (after a reload it has the pushed ones, newer than the file). A missing
--- file is not an error.
function M.load_file(path)
  local f = io.open(path, "rb")
  if not f then
    return
  end
  for line in f:lines() do
    local name, list = string.match(line, "^(%S+)%s*(.*)$")
    -- Pushed lists (the dict outlives a reload) win over the file's.
    if name and string.match(name, NAME_RE) and not ngx.shared[DICT]:get("v:" .. name) then
      local ok, err = store(name, list)
      if not ok then
        ngx.log(ngx.ERR, "reactor: ", path, ": endpoint ", name, ": ", err)
      end
    end
  end
  f:close()
end

return M
