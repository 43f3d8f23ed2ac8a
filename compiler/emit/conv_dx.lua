-- conv_dx.lua: the input gradient of a strided (or dilated) convolution in
-- the tile form (select_conv.c chose it: p.mm.tiles, form "tile").
--
-- dx[c, hi, wi] = sum over o, u, v of W[o, c, u, v] dy[o, i, j] where
-- hi = i sh + u dh - pt and wi = j sw + v dw - pl.  Split by stride phase:
--   rows     dx row hi takes the taps u with u dh = hi + pt (mod sh) and
--            i = (hi + pt - u dh) / sh in [0, ho): at most nu of them,
--            listed per row at run time (us[]), their dy rows copied into
--            a stack buffer xr[o][s][ROW] (s < nu), padded with zeros;
--   columns  dx column wi = sw m - pl + r (phase r < sw, m in [mlo, mhi))
--            takes the taps v with v dw = r (mod sw), each from dy column
--            m - v dw / sw: for each phase a stride-1 correlation of the
--            padded dy row (unit-stride vectors along m).
-- A tile holds MR channels c by the sw phases by NR vectors of V values
-- of m; each tap v loads MR weights and NR vectors of the buffer and adds
-- into its phase's MR x NR accumulators.  At the end the phases are
-- interleaved into a stack row ob[MR][sw n] (dx columns in order), and the
-- group's epilogue runs along it (unit stride; dx columns outside [0, w)
-- are computed from the zero padding and dropped).  No multiply-add is
-- spent on a zero: every tap of the sum is a real one.
--
-- Naming as conv.lua's tile form: the reduction runs over the channels o
-- of dy, the tile's rows are channels of dx (channel_blocks' "o0").

local cfmt = require "cfmt"
local group = require "group"

local M = {}
local fmt = string.format

-- e + c for a C expression or a number e (folded).
local function addc(e, c, plus)
  if type(e) == "number" then return tostring(e + c) end
  return plus(e, c)
end

-- The geometry (select_conv.c's strided_dx_row computes the same buffer):
-- mlo, mhi: the m of the first and after the last dx column; P: the zero
-- columns left of dy's in a buffer row; ROW its length; NU its rows per
-- channel of dy.
local function dx_geometry(q)
  local k = q.k
  local g = {mlo = k.pl // k.sw, mhi = (q.w + k.pl + k.sw - 1) // k.sw}
  local smax = (k.kw - 1) * k.dw // k.sw
  g.P = math.max(0, smax - g.mlo)
  g.ROW = g.P + math.max(q.wo, g.mhi)
  g.NU = 0
  for t = 0, k.sh - 1 do
    local n = 0
    for u = 0, k.kh - 1 do
      if (t - u * k.dh) % k.sh == 0 then n = n + 1 end
    end
    g.NU = math.max(g.NU, n)
  end
  return g
end

-- conv.lua's helpers: h (geometry, at, plus, vars_of, loop0, channel_blocks).
function M.tile_dx(K, root, members, p, t, h)
  local q = h.geometry(K, p)
  local k = q.k
  local g = dx_geometry(q)
  local T, V, MR, NR, SW = K.T, t.v, t.mr, t.nr, k.sw
  local plus, at, sum = h.plus, h.at, cfmt.sum
  local dy, wt = p.inputs[1], p.inputs[2]
  local CO, SLOT = q.co, g.NU * g.ROW  -- the channels of dy, a channel's buffer rows
  local b, hi, uu, tt, i, o, s, e, j, l = K:iname("b"), K:iname("hi"), K:iname("u"),
    K:iname("t"), K:iname("i"), K:iname("o"), K:iname("s"), K:iname("e"), K:iname("j"),
    K:iname("l")
  local xr, us, nu, d, xs, a, ob = K:iname("xr"), K:iname("us"), K:iname("nu"), K:iname("d"),
    K:iname("xs"), K:iname("a"), K:iname("ob")
  K:open("")
  K:line(fmt("%s %s[%d];", T, xr, CO * SLOT))
  K:loop(e, CO * SLOT)
  K:line(fmt("%s[%s] = %s;", xr, e, K:lit(0)))  -- the padding, never written again
  K:close()
  h.loop0(K, b, q.nb)
  K:loop(hi, q.h)
  -- the taps u of row hi and their dy rows
  K:line(fmt("int %s[%d] = {0};", us, g.NU))
  K:line(fmt("int %s = 0;", nu))
  K:loop(uu, k.kh)
  K:line(fmt("const int %s = %s;", tt, plus(fmt("%s - %s", hi, cfmt.term(uu, k.dh)), k.pt)))
  local cond = {fmt("%s < 0", tt)}
  if k.sh > 1 then cond[#cond + 1] = fmt("%s %% %d != 0", tt, k.sh) end
  cond[#cond + 1] = fmt("%s >= %d", k.sh > 1 and fmt("%s / %d", tt, k.sh) or tt, q.ho)
  K:line(fmt("if (%s) continue;", table.concat(cond, " || ")))
  K:line(fmt("const int %s = %s;", i, k.sh > 1 and fmt("%s / %d", tt, k.sh) or tt))
  h.loop0(K, o, CO)
  local ov = CO > 1 and o or nil
  K:line(fmt("%s *%s = %s + %s;", T, d, xr, sum({cfmt.term(ov, SLOT), cfmt.term(nu, g.ROW),
    tostring(g.P)}, 3)))
  K:loop(j, q.wo)
  K:line(fmt("%s[%s] = %s;", d, j, K:read(dy, at({q.yb and q.nb > 1 and b or nil, ov, i, j},
    {q.nb, q.co, q.ho, q.wo}))))
  K:close()
  K:close()
  K:line(fmt("%s[%s++] = %s;", us, nu, uu))
  K:close()
  -- one tile: channels c0 .. c0 + mr - 1, m = mlo + jt + cc V + l (cc <
  -- ng, l < nl), every phase; dx columns [lo, hi_) of it kept
  local function tile(c0, mr, jt, ng, nl, lo, hi_)
    local n = (ng - 1) * V + nl
    local function lanes(body)
      if nl == 1 then K:open("") else K:loop(l, nl, true) end
      body(nl == 1 and "0" or l)
      K:close()
    end
    local function acc(r, ph, cc) return (r * SW + ph) * ng + cc end
    K:open("")
    K:line(fmt("%s %s[%d][%d];", T, a, mr * SW * ng, nl))
    K:loop(e, mr * SW * ng)
    lanes(function(lv) K:line(fmt("%s[%s][%s] = %s;", a, e, lv, K:lit(0))) end)
    K:close()
    h.loop0(K, o, CO)
    local ov = CO > 1 and o or nil
    K:open(fmt("for (int %s = 0; %s < %s; %s++)", s, s, nu, s))
    K:line(fmt("const int %s = %s[%s];", uu, us, s))
    K:line(fmt("const %s *%s = %s + %s;", T, xs, xr, sum({cfmt.term(ov, SLOT),
      cfmt.term(s, g.ROW)}, 2)))
    for v = 0, k.kw - 1 do
      local ph, sv = v * k.dw % SW, v * k.dw // SW
      K:open("")
      for r = 0, mr - 1 do
        local c = plus(c0, r)
        if c:find(" ") then c = "(" .. c .. ")" end
        K:line(fmt("const %s %s = %s;", T, K:iname("w" .. r), K:read(wt, sum({
          cfmt.term(ov, q.c * k.kh * k.kw), cfmt.term(c, k.kh * k.kw), cfmt.term(uu, k.kw),
          v ~= 0 and tostring(v) or nil}, 4))))
      end
      lanes(function(lv)
        for cc = 0, ng - 1 do
          local xv = K:iname("x" .. cc)
          K:line(fmt("const %s %s = %s[%s];", T, xv, xs, sum({addc(jt, g.mlo - sv + g.P + cc * V, plus),
            lv ~= "0" and lv or nil}, 2)))
          for r = 0, mr - 1 do
            K:line(fmt("%s[%d][%s] += %s * %s;", a, acc(r, ph, cc), lv, K:iname("w" .. r), xv))
          end
        end
      end)
      K:close()
    end
    K:close()
    K:close()
    -- the phases interleaved into dx's column order, then the epilogue
    K:line(fmt("%s %s[%d][%d];", T, ob, mr, SW * n))
    for r = 0, mr - 1 do
      for cc = 0, ng - 1 do
        lanes(function(lv)
          for ph = 0, SW - 1 do
            K:line(fmt("%s[%d][%s] = %s[%d][%s];", ob, r, sum({lv ~= "0" and cfmt.term(lv, SW) or
              nil, tostring(SW * cc * V + ph)}, 2), a, acc(r, ph, cc), lv))
          end
        end)
      end
    end
    local col0 = type(jt) == "number" and tostring(SW * (g.mlo + jt) - k.pl) or
      plus(cfmt.term(jt, SW), SW * g.mlo - k.pl)  -- dx column of ob[.][0]
    for r = 0, mr - 1 do
      local c = plus(c0, r)
      if c:find(" ") then c = "(" .. c .. ")" end
      K:loop(e, hi_ - lo, hi_ - lo > 1)
      local wi = sum({col0 ~= "0" and col0 or nil, plus(e, lo)}, 2)
      if wi:find(" ") then wi = "(" .. wi .. ")" end
      group.group_body(K, root, members, h.vars_of(K, root, b, {c, hi, wi}), p.id,
        fmt("%s[%d][%s]", ob, r, plus(e, lo)))
      K:close()
    end
    K:close()
  end
  -- the tiles along m: spans of NR vectors, then whole vectors, then the
  -- rest; the spans whose columns all lie in [0, w) in one loop
  local M_ = g.mhi - g.mlo
  local function bounds(jt, n)
    local col0 = SW * (g.mlo + jt) - k.pl
    return math.max(0, -col0), math.min(SW * n, q.w - col0)
  end
  local function columns_of(c0, mr)
    local span = NR * V
    local full = M_ // span
    local f0, f1 = 0, full  -- the spans inside
    while f0 < full and select(1, bounds(f0 * span, span)) > 0 do f0 = f0 + 1 end
    while f1 > f0 and select(2, bounds((f1 - 1) * span, span)) < SW * span do f1 = f1 - 1 end
    local function one(jt, ng, nl)
      local lo, hi_ = bounds(jt, (ng - 1) * V + nl)
      if hi_ > lo then tile(c0, mr, jt, ng, nl, lo, hi_) end
    end
    for f = 0, f0 - 1 do one(f * span, NR, V) end
    if f1 - f0 > 1 then
      local jt = K:iname("jt")
      K:open(fmt("for (int %s = %d; %s < %d; %s += %d)", jt, f0 * span, jt, f1 * span, jt, span))
      tile(c0, mr, jt, NR, V, 0, SW * span)
      K:close()
    elseif f1 - f0 == 1 then
      one(f0 * span, NR, V)
    end
    for f = f1, full - 1 do one(f * span, NR, V) end
    local at_, rest = full * span, M_ - full * span
    if rest >= V then
      one(at_, rest // V, V)
      at_, rest = at_ + rest // V * V, rest % V
    end
    if rest > 0 then one(at_, 1, rest) end
  end
  h.channel_blocks(K, q.c, MR, columns_of)
  K:close()
  K:close()
  K:close()
end

return M
