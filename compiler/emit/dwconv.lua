-- dwconv.lua: the tile form of the depthwise convolutions (one input
-- channel per group): conv2d, its input gradient (stride 1) and its
-- weight gradient, as select_conv.c's depthwise_tiles chose them (t.v
-- lanes; t.mb output rows a band; vectors: t.nr vectors a tile; a scalar
-- FPU: t.mr rows by t.nr columns).  conv.lua's conv_group calls it; it
-- decides nothing.
--
-- The buffer.  Channels are independent: for each (sample, channel) and
-- band of output rows, the input rows the band reads are copied into xr,
-- zero-padded and split by stride phase into sh x sw planes of PS
-- elements, rows Wq wide (stride 1: Wq = W + max(pl, pr), the padding
-- between two rows shared; else ceil((W + pl + pr) / sw)).  Output (i, j)
-- of the band is then flat position f = i Wq + j, and its tap (u, v)
-- reads plane (u dh % sh) sw + v dw % sw at f + (u dh / sh) Wq + v dw /
-- sw: unit stride, never out of the buffer, no clipping.  xr is zeroed
-- once; a band writes only the data columns of its rows (zeros for rows
-- outside the image), so the padding columns stay zero.
--
-- Forward, vectors: tiles of NR vectors of V flat positions sum the taps
-- (one weight broadcast each) in registers; positions Wo .. Wq - 1 of a
-- row are computed and dropped.  The sums go to the flat row yf, then the
-- epilogue runs on yf[i Wq + j].  Scalar FPU: tiles of MR rows by NR
-- columns of (i, j), the kh kw weights in registers; each input value of
-- the tile is loaded once and multiplied into every accumulator that
-- reads it (taps in (u, v) order for each), then the epilogue runs on the
-- accumulators.  The input gradient (stride 1) is the forward form on dy
-- with the flipped kernel, padded (kh - 1) dh - pt above, (kw - 1) dw - pl
-- left.  The weight gradient: dy's band copied to a flat row dyf (zeros
-- between rows), then kh kw accumulators of V lanes sum dyf[f] xr[f +
-- tap] over the flat positions of every sample and band; the lanes summed
-- in order at the end, then the epilogue (the update) on each weight.

local cfmt = require "cfmt"
local group = require "group"

local M = {}
local fmt = string.format
local group_body = group.group_body

-- The sum of the non-nil arguments, C text ("0" for none).
local function S(...)
  local t = table.pack(...)
  return cfmt.sum(t, t.n)
end

-- The depthwise geometry of node p (H: conv.lua's helpers): the
-- convolution the form computes (conv2d_dx: the flipped one on dy), its
-- input x [c, h, w] (xb batched), output [co, ho, wo], window, weights
-- widx(o, u, v) and the input channel xch(o) of output channel o.
local function geometry(K, p, H)
  local q = H.geometry(K, p)
  local k = q.k
  local g = {nb = q.nb, kh = k.kh, kw = k.kw, sh = k.sh, sw = k.sw, dh = k.dh, dw = k.dw,
    pt = k.pt, pl = k.pl, pr = k.pr, wt = p.inputs[2]}
  local taps = k.kh * k.kw
  if p.op == "conv2d_dx" then
    g.x, g.xb, g.c, g.h, g.w, g.co, g.ho, g.wo = p.inputs[1], q.yb, q.co, q.ho, q.wo, q.c, q.h, q.w
    g.pt, g.pl = (k.kh - 1) * k.dh - k.pt, (k.kw - 1) * k.dw - k.pl
    g.pr = q.w - q.wo + (k.kw - 1) * k.dw - g.pl
    g.widx = function(o, u, v)
      return S(cfmt.term(o, taps), tostring((k.kh - 1 - u) * k.kw + k.kw - 1 - v))
    end
    g.xch = function(o) return o end
  else
    if p.op == "conv2d_dw" then g.dy, g.yb, g.x = p.inputs[1], q.yb, p.inputs[2] else
      g.x = p.inputs[1] end
    g.xb, g.c, g.h, g.w, g.co, g.ho, g.wo = q.xb, q.c, q.h, q.w, q.co, q.ho, q.wo
    g.widx = function(o, u, v)
      return S(cfmt.term(o, taps), u * k.kw + v ~= 0 and tostring(u * k.kw + v) or nil)
    end
    local og = q.co // q.c
    g.xch = function(o) return og > 1 and fmt("(%s / %d)", o, og) or o end
  end
  g.wq = g.sw == 1 and g.w + math.max(g.pl, g.pr) or (g.w + g.pl + g.pr + g.sw - 1) // g.sw
  return g
end

-- The buffer's sizes for bands of rb rows and vectors of V: rows read,
-- flat outputs f and their vector round-up fpad, plane size ps.
local function sizes(g, rb, V)
  local rows = (rb - 1) * g.sh + (g.kh - 1) * g.dh + 1
  local hq = (rows + g.sh - 1) // g.sh
  local f = (rb - 1) * g.wq + g.wo
  local fpad = (f + V - 1) // V * V
  local maxoff = (g.kh - 1) * g.dh // g.sh * g.wq + (g.kw - 1) * g.dw // g.sw
  return {rows = rows, f = f, fpad = fpad, ps = math.max(hq * g.wq, fpad + maxoff)}
end

-- Tap (u, v)'s offset in xr from a flat position.
local function tap_off(g, ps, u, v)
  local plane = (u * g.dh % g.sh) * g.sw + v * g.dw % g.sw
  return plane * ps + (u * g.dh // g.sh) * g.wq + v * g.dw // g.sw
end

-- Copy the rows band i0 (C text, output rows) reads of input channel ch
-- of sample b into xr (sizes s, rows of the band: rb).  A band at a
-- constant row copies a constant range of rows and zeroes the rest, which
-- the only band (single) may skip: nothing else writes them.
local function copy_band(K, H, g, s, b, ch, i0, rb, single)
  local r, hi, wi, d = K:iname("r"), K:iname("hi"), K:iname("wi"), K:iname("d")
  local xr = K:iname("xr")
  local rows = (rb - 1) * g.sh + (g.kh - 1) * g.dh + 1
  local function row_ptr()
    if g.sh == 1 then
      K:line(fmt("%s *%s = %s + %s;", K.T, d, xr, cfmt.term(r, g.wq)))
    else
      K:line(fmt("%s *%s = %s + %s %% %d * %d + %s / %d * %d;", K.T, d, xr, r, g.sh,
        g.sw * s.ps, r, g.sh, g.wq))
    end
  end
  -- one input row into its planes, d[...] = val(column): stride 1 one
  -- loop; else each plane's columns a unit-stride run (column w0 + sw q
  -- of the row at q + (w0 + pl) / sw of plane (w0 + pl) % sw), the
  -- planes' q in one loop, no division per element
  local function put_row(val)
    if g.sw == 1 then
      K:loop(wi, g.w)
      K:line(fmt("%s[%s] = %s;", d, H.plus(wi, g.pl), val(wi)))
      K:close()
      return
    end
    local runs, n = {}, g.w
    for c = 0, g.sw - 1 do
      local w0 = (c - g.pl) % g.sw
      local f = {w0 = w0, n = g.w > w0 and (g.w - w0 + g.sw - 1) // g.sw or 0,
        base = c * s.ps + (w0 + g.pl) // g.sw}
      runs[#runs + 1] = f
      n = math.min(n, f.n)
    end
    local function put(f, q)
      local col = type(q) == "number" and tostring(q * g.sw + f.w0) or H.plus(cfmt.term(q, g.sw), f.w0)
      local at = type(q) == "number" and tostring(q + f.base) or H.plus(q, f.base)
      K:line(fmt("%s[%s] = %s;", d, at, val(col)))
    end
    if n > 0 then
      K:loop(wi, n)
      for _, f in ipairs(runs) do put(f, wi) end
      K:close()
    end
    for _, f in ipairs(runs) do
      for q = n, f.n - 1 do put(f, q) end
    end
  end
  local function zero() return K:lit(0) end
  local function zero_rows(a, e)
    if e <= a then return end
    K:open(fmt("for (int %s = %d; %s < %d; %s++)", r, a, r, e, r))
    row_ptr()
    put_row(zero)
    K:close()
  end
  local start = math.tointeger(tonumber(i0))
  local r0, r1
  if start then  -- the rows inside the image: hi = start sh - pt + r in [0, h)
    r0 = math.max(0, g.pt - start * g.sh)
    r1 = math.min(rows, g.h + g.pt - start * g.sh)
    if not single then zero_rows(0, r0) end
    K:open(fmt("for (int %s = %d; %s < %d; %s++)", r, r0, r, r1, r))
  else
    K:loop(r, rows)
  end
  K:line(fmt("const int %s = %s;", hi, H.plus(S(not start and cfmt.term(i0, g.sh) or nil, r),
    -g.pt + (start or 0) * g.sh)))
  row_ptr()
  if not start then
    K:open(fmt("if (%s < 0 || %s >= %d)", hi, hi, g.h))
    put_row(zero)
    K:line("continue;")
    K:close()
  end
  put_row(function(col)
    return K:read(g.x, H.at({g.xb and g.nb > 1 and b or nil, g.c > 1 and ch or nil, hi, col},
      {g.nb, g.c, g.h, g.w}))
  end)
  K:close()
  if start and not single then zero_rows(r1, rows) end
end

-- Blocks of 'step' of [0, n): body(start, width), the full blocks in a
-- loop over var (or inline when there is one), then the rest.
local function blocks(K, var, n, step, body)
  local full = n // step
  if full > 1 then
    K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", var, var, full * step, var, step))
    body(var, step)
    K:close()
  elseif full == 1 then
    body("0", step)
  end
  if n % step > 0 then body(tostring(full * step), n % step) end
end

-- "(e)" when e is a sum.
local function paren(e)
  return e:find(" ") and "(" .. e .. ")" or e
end

-- Vector forward band: tiles of t.nr vectors over the flat run into yf,
-- then the epilogue.
local function vector_band(K, H, root, members, p, g, s, t, b, o, i0, rb)
  local V, T = t.v, K.T
  local xr, yf, a, l, f0 = K:iname("xr"), K:iname("yf"), K:iname("a"), K:iname("l"), K:iname("f0")
  local f = (rb - 1) * g.wq + g.wo
  local nvec = (f + V - 1) // V
  blocks(K, f0, nvec, t.nr, function(v0, nv)
    local base = v0 == f0 and f0 or tostring(tonumber(v0) * V)
    if v0 == f0 then  -- the loop runs over vectors: f0 counts them
      base = fmt("%s * %d", f0, V)
    end
    K:open("")
    K:line(fmt("%s %s[%d][%d];", T, a, nv, V))
    K:loop(K:iname("e"), nv)
    K:loop(l, V, true)
    K:line(fmt("%s[%s][%s] = %s;", a, K:iname("e"), l, K:lit(0)))
    K:close()
    K:close()
    for u = 0, g.kh - 1 do
      for v = 0, g.kw - 1 do
        K:open("")
        local w = K:iname("w")
        K:line(fmt("const %s %s = %s;", T, w, K:read(g.wt, g.widx(o, u, v))))
        local off = tap_off(g, s.ps, u, v)
        for cc = 0, nv - 1 do
          K:loop(l, V, true)
          K:line(fmt("%s[%d][%s] += %s * %s[%s];", a, cc, l, w, xr,
            S(base ~= "0" and base or nil, tostring(off + cc * V) ~= "0" and
              tostring(off + cc * V) or nil, l)))
          K:close()
        end
        K:close()
      end
    end
    for cc = 0, nv - 1 do
      K:loop(l, V, true)
      K:line(fmt("%s[%s] = %s[%d][%s];", yf, S(base ~= "0" and base or nil,
        cc > 0 and tostring(cc * V) or nil, l), a, cc, l))
      K:close()
    end
    K:close()
  end)
  local il, j = K:iname("il"), K:iname("j")
  K:loop(il, rb)
  K:loop(j, g.wo)
  local i = i0 == "0" and il or fmt("(%s + %s)", i0, il)
  group_body(K, root, members, H.vars_of(K, root, b, {o, i, j}), p.id,
    fmt("%s[%s]", yf, S(cfmt.term(il, g.wq), j)))
  K:close()
  K:close()
end

-- Scalar forward band: tiles of t.mr x t.nr outputs (i, j), each input
-- value loaded once per tile; w: the names of the taps' weights.
local function scalar_band(K, H, root, members, p, g, s, t, b, o, i0, rb, w)
  local T, xr, a = K.T, K:iname("xr"), K:iname("a")
  local ib, jb = K:iname("ib"), K:iname("jb")
  blocks(K, ib, rb, t.mr, function(r0, mr)
    blocks(K, jb, g.wo, t.nr, function(c0, nc)
      K:open("")
      K:line(fmt("%s %s[%d];", T, a, mr * nc))
      for e = 0, mr * nc - 1 do K:line(fmt("%s[%d] = %s;", a, e, K:lit(0))) end
      for u = 0, g.kh - 1 do
        for v = 0, g.kw - 1 do
          K:line(fmt("const %s %s = %s;", T, w[u * g.kw + v + 1], K:read(g.wt, g.widx(o, u, v))))
        end
      end
      -- the tile's inputs, plane by plane, row by row: each loaded once
      local base = S(r0 ~= "0" and cfmt.term(r0, g.wq) or nil, c0 ~= "0" and c0 or nil)
      local uses = {}  -- offset -> list of {acc, tap}
      local order = {}
      for r = 0, mr - 1 do
        for c = 0, nc - 1 do
          for u = 0, g.kh - 1 do
            for v = 0, g.kw - 1 do
              local off = tap_off(g, s.ps, u, v) + r * g.wq + c
              if not uses[off] then uses[off] = {}; order[#order + 1] = off end
              table.insert(uses[off], {r * nc + c, u * g.kw + v})
            end
          end
        end
      end
      table.sort(order)
      local xv = K:iname("xv")
      for _, off in ipairs(order) do
        K:open("")
        K:line(fmt("const %s %s = %s[%s];", T, xv, xr, S(base ~= "0" and base or nil,
          off ~= 0 and tostring(off) or nil) ))
        for _, use in ipairs(uses[off]) do
          K:line(fmt("%s[%d] += %s * %s;", a, use[1], w[use[2] + 1], xv))
        end
        K:close()
      end
      for r = 0, mr - 1 do
        for c = 0, nc - 1 do
          local i = S(i0 ~= "0" and i0 or nil, r0 ~= "0" and r0 or nil,
            r > 0 and tostring(r) or nil)
          local j = S(c0 ~= "0" and c0 or nil, c > 0 and tostring(c) or nil)
          K:open("")
          group_body(K, root, members, H.vars_of(K, root, b, {o, paren(i), paren(j)}), p.id,
            fmt("%s[%d]", a, r * nc + c))
          K:close()
        end
      end
      K:close()
    end)
  end)
end

-- conv2d and conv2d_dx in the depthwise tile form.
local function forward(K, H, root, members, p, t)
  local g = geometry(K, p, H)
  local V, T = t.v, K.T
  local s = sizes(g, t.mb, V)
  local xr, yf, e = K:iname("xr"), K:iname("yf"), K:iname("e")
  local b, o, i0 = K:iname("b"), K:iname("o"), K:iname("i0")
  K:line(fmt("/* depthwise tile form: bands of %d rows, rows %d apart; tiles of %s */", t.mb, g.wq,
    V > 1 and fmt("%d vectors of %d", t.nr, V) or fmt("%d x %d outputs", t.mr, t.nr)))
  K:open("")
  K:line(fmt("%s %s[%d];", T, xr, g.sh * g.sw * s.ps))
  if V > 1 then K:line(fmt("%s %s[%d];", T, yf, s.fpad)) end
  K:loop(e, g.sh * g.sw * s.ps)
  K:line(fmt("%s[%s] = %s;", xr, e, K:lit(0)))
  K:close()
  H.loop0(K, b, g.nb)
  K:loop(o, g.co)
  local w = {}
  if V == 1 then  -- the taps' weights, loaded in each tile
    for u = 0, g.kh - 1 do
      for v = 0, g.kw - 1 do
        w[#w + 1] = K:iname(fmt("w%d_%d", u, v))
      end
    end
  end
  blocks(K, i0, g.ho, t.mb, function(start, rb)
    K:open("")
    copy_band(K, H, g, s, b, g.xch(o), start, rb, t.mb == g.ho)
    if V > 1 then
      vector_band(K, H, root, members, p, g, s, t, b, o, start, rb)
    else
      scalar_band(K, H, root, members, p, g, s, t, b, o, start, rb, w)
    end
    K:close()
  end)
  K:close()
  K:close()
  K:close()
end

-- conv2d_dw in the depthwise tile form.
local function weight(K, H, root, members, p, t)
  local g = geometry(K, p, H)
  local V, T = t.v, K.T
  local s = sizes(g, t.mb, V)
  local xr, dyf, e, a, l = K:iname("xr"), K:iname("dyf"), K:iname("e"), K:iname("a"), K:iname("l")
  local b, o, i0, il, j, f0 = K:iname("b"), K:iname("o"), K:iname("i0"), K:iname("il"),
    K:iname("j"), K:iname("f0")
  local taps = g.kh * g.kw
  K:line(fmt("/* depthwise tile form: bands of %d rows, rows %d apart; %d sums of %d lanes */",
    t.mb, g.wq, taps, V))
  K:open("")
  K:line(fmt("%s %s[%d];", T, xr, g.sh * g.sw * s.ps))
  K:line(fmt("%s %s[%d];", T, dyf, s.fpad))
  K:loop(e, g.sh * g.sw * s.ps)
  K:line(fmt("%s[%s] = %s;", xr, e, K:lit(0)))
  K:close()
  K:loop(e, s.fpad)
  K:line(fmt("%s[%s] = %s;", dyf, e, K:lit(0)))
  K:close()
  K:loop(o, g.co)
  K:line(fmt("%s %s[%d][%d];", T, a, taps, V))
  K:loop(e, taps)
  K:loop(l, V, V > 1)
  K:line(fmt("%s[%s][%s] = %s;", a, e, l, K:lit(0)))
  K:close()
  K:close()
  H.loop0(K, b, g.nb)
  blocks(K, i0, g.ho, t.mb, function(start, rb)
    K:open("")
    copy_band(K, H, g, s, b, g.xch(o), start, rb, t.mb == g.ho)
    -- dy's rows of the band, flat (the columns between rows stay zero)
    local f = (rb - 1) * g.wq + g.wo
    local fpad = (f + V - 1) // V * V
    K:loop(il, rb)
    K:loop(j, g.wo)
    local i = start == "0" and il or fmt("%s + %s", start, il)
    local src = H.at({g.yb and g.nb > 1 and b or nil, o, paren(i), j}, {g.nb, g.co, g.ho, g.wo})
    K:line(fmt("%s[%s] = %s;", dyf, S(cfmt.term(il, g.wq), j), K:read(g.dy, src)))
    K:close()
    K:close()
    if fpad > f then  -- a shorter band: rows of the one before past its end
      K:open(fmt("for (int %s = %d; %s < %d; %s++)", e, f, e, fpad, e))
      K:line(fmt("%s[%s] = %s;", dyf, e, K:lit(0)))
      K:close()
    end
    K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", f0, f0, fpad, f0, V))
    K:loop(l, V, V > 1)
    local d = K:iname("d")
    K:line(fmt("const %s %s = %s[%s + %s];", T, d, dyf, f0, l))
    for u = 0, g.kh - 1 do
      for v = 0, g.kw - 1 do
        local off = tap_off(g, s.ps, u, v)
        K:line(fmt("%s[%d][%s] += %s * %s[%s];", a, u * g.kw + v, l, d, xr,
          S(f0, off > 0 and tostring(off) or nil, l)))
      end
    end
    K:close()
    K:close()
    K:close()
  end)
  K:close()
  -- each weight's lanes summed in order, then the epilogue
  local sm = K:iname("sum")
  for u = 0, g.kh - 1 do
    for v = 0, g.kw - 1 do
      K:open("")
      H.lane_total(K, sm, a, u * g.kw + v, V, l)
      group_body(K, root, members, H.vars_of(K, root, nil, {o, "0", tostring(u), tostring(v)}),
        p.id, sm)
      K:close()
    end
  end
  K:close()
  K:close()
end

-- The kernel of depthwise convolution p (or a gradient) in the tile form.
function M.print(K, H, root, members, p, t)
  if p.op == "conv2d_dw" then return weight(K, H, root, members, p, t) end
  return forward(K, H, root, members, p, t)
end

return M
