-- conv.lua: the kernels of the spatial ops (spatial.c, SPEC 1): conv2d
-- and its two gradients, the pools and theirs, reshape, concat, slice.
--
-- Direct loops with every bound a constant, no im2col buffer.  A
-- convolution sums one output row at a time into a local accumulator row
-- (each tap an axpy along the row: unit stride when the stride is 1, so it
-- vectorizes), then runs the group's elementwise epilogue (bias,
-- activation, the optimizer update: group.lua's group_body) on each
-- finished sum, as gemm.lua does for products.  Padding is a clipped range
-- of the row loop, computed here per kernel column, never a test per
-- element.  Each output element sums its taps in the order (c, u, v) of
-- spatial.c's reference loops; the weight gradient sums over (b, ho, wo).
--
-- Naming: b sample, o output channel, c input channel, i/j output row and
-- column, hi/wi input row and column, u/v kernel row and column.

local cfmt = require "cfmt"
local group = require "group"
local dwconv = require "dwconv"
local lane_chunks = require("gradc").lane_chunks  -- kernel.c decides a row loop's chunks

local M = {}
local fmt = string.format
local group_body = group.group_body

-- The geometry of node n's window (spatial.c's Geo): input [c, h, w],
-- output [co, ho, wo] of the forward op, nb samples, cg/og channels per
-- group.
local function geometry(K, n)
  local inp, out, o = n, n, n.operands  -- emit.c's records of its inputs
  if n.op == "conv2d" or n.op == "maxpool2d" or n.op == "avgpool2d" then
    inp = o[1]
  elseif n.op == "conv2d_dw" then
    inp, out = o[2], o[1]
  else  -- conv2d_dx, maxpool2d_grad, avgpool2d_grad
    out = o[1]
  end
  local w = n.win
  local q = {nb = out.batched and K.batch or 1, c = inp.shape[1], h = inp.shape[2],
             w = inp.shape[3], co = out.shape[1], ho = out.shape[2], wo = out.shape[3], k = w}
  q.cg, q.og = q.c // w.groups, q.co // w.groups
  q.xb, q.yb = inp.batched, out.batched
  return q
end

-- The output columns j in [j0, j1) whose tap v reads an input column in
-- [0, w): j sw - pl + v dw in range.
local function col_range(q, v)
  local k = q.k
  local off = v * k.dw - k.pl
  local j0 = off >= 0 and 0 or (-off + k.sw - 1) // k.sw
  local j1 = math.min(q.wo, (q.w - 1 - off) // k.sw + 1)
  return j0, math.max(j1, j0), off
end

-- "for (int v = a; v < b; v++)" or nothing for an empty range; returns
-- whether a loop was opened.
local function range_loop(K, v, a, b)
  if b <= a then return false end
  K:open(fmt("for (int %s = %d; %s < %d; %s++)", v, a, v, b, v))
  return true
end

-- Statements stmt(e) for e = every j in [j0, j1): kernel.c's chunks (the
-- target's vector, then halves of it down to 4) as inner loops of constant
-- length, which GCC vectorizes at -O2 (GRADC_VECTOR), then the rest (at
-- most 3) one by one.  stmt gets an index expression and the lane
-- variable (nil in the tail).
local function lanes(K, j, j0, j1, stmt)
  local chunks, rest = lane_chunks(j0, j1, K.block)
  for _, ch in ipairs(chunks) do
    local at_, count, w = ch[1], ch[2], ch[3]
    local jj, l = K:iname("jj"), K:iname("l")
    if count > 1 then
      K:open(fmt("for (int %s = %d; %s < %d; %s += %d)", jj, at_, jj, at_ + count * w, jj, w))
    else
      K:open("")
    end
    K:loop(l, w, true)
    local e = count > 1 and fmt("(%s + %s)", jj, l) or (at_ > 0 and fmt("(%s + %d)", l, at_) or l)
    stmt(e, l)
    K:close()
    K:close()
  end
  if rest < j1 then
    K:open(fmt("for (int %s = %d; %s < %d; %s++)", j, rest, j, j1, j))
    stmt(j, nil)
    K:close()
  end
end

-- "T s = a[i][0];", then the other nl - 1 lanes of a[i] added in order
-- (loop variable l): a weight gradient's accumulator summed.
local function lane_total(K, s, a, i, nl, l)
  K:line(fmt("%s %s = %s[%d][0];", K.T, s, a, i))
  if nl > 1 then
    K:open(fmt("for (int %s = 1; %s < %d; %s++)", l, l, nl, l))
    K:line(fmt("%s += %s[%d][%s];", s, a, i, l))
    K:close()
  end
end

-- A loop over n values of v, or a plain block when n == 1 (v unused).
local function loop0(K, v, n)
  if n > 1 then K:loop(v, n) else K:open("") end
end

-- body(o0, mr) for the output channels in blocks of 'mr' (a loop over
-- the full blocks, or one block inline), then body(rest) for the last ones
local function channel_blocks(K, co, mr, body)
  local full = co // mr
  if full > 1 then
    local o0 = K:iname("o0")
    K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", o0, o0, full * mr, o0, mr))
    body(o0, mr)
    K:close()
  elseif full == 1 then
    body("0", mr)
  end
  if co % mr > 0 then body(tostring(full * mr), co % mr) end
end

local function sum(t)
  return cfmt.sum(t)
end

-- "e + c" or "e - c" for an integer c (nothing for 0).
local function plus(e, c)
  if c == 0 then return e end
  if e == "0" then return tostring(c) end
  return fmt("%s %s %d", e, c < 0 and "-" or "+", math.abs(c))
end

-- Kernel columns unrolled, each with its column range clipped at compile
-- time; a wider kernel loops over its columns with the range computed at
-- run time (so a 1 x 60000 kernel does not print 60000 loops).
local UNROLL = 16

-- body(v, j0, j1, off) for each kernel column v whose output columns
-- [j0, j1) read input columns j sw + off inside the row: numbers when
-- unrolled, C expressions (inside a loop over v) otherwise.
local function columns(K, q, body)
  local k = q.k
  if k.kw <= UNROLL then
    for v = 0, k.kw - 1 do
      local j0, j1, off = col_range(q, v)
      if j1 > j0 then body(v, j0, j1, off) end
    end
    return
  end
  local v, off, j0, j1 = K:iname("v"), K:iname("off"), K:iname("j0"), K:iname("j1")
  K:loop(v, k.kw)
  K:line(fmt("const int %s = %s;", off, plus(cfmt.term(v, k.dw), -k.pl)))
  K:line(fmt("const int %s = %s >= 0 ? 0 : (%d - %s) / %d;", j0, off, k.sw - 1, off, k.sw))
  K:line(fmt("const int %s = %s > %d ? 0 : (%d - %s) / %d + 1;", j1, off, q.w - 1, q.w - 1, off,
    k.sw))
  body(v, j0, fmt("(%s < %d ? %s : %d)", j1, q.wo, j1, q.wo), off)
  K:close()
end

-- stmt(e) for j in [j0, j1): lanes() for constant bounds, a plain loop for
-- run-time ones.
local function row(K, j, j0, j1, stmt)
  if type(j0) == "number" then return lanes(K, j, j0, j1, stmt) end
  K:open(fmt("for (int %s = %s; %s < %s; %s++)", j, j0, j, j1, j))
  stmt(j, nil)
  K:close()
end

-- e + off for a constant or C expression off.
local function add(e, off)
  if type(off) == "number" then return plus(e, off) end
  return fmt("%s + %s", e, off)
end

-- Row-major offset of (index expressions) in dims, dropping zero terms.
local function at(idx, dims)
  local t, stride = {}, 1
  for k = #dims, 1, -1 do
    t[#t + 1] = cfmt.term(idx[k], stride)
    stride = stride * dims[k]
  end
  local r = {}
  for k = #t, 1, -1 do r[#r + 1] = t[k] end
  return sum(r)
end

-- The epilogue of row 'acc' (len elements along the last var): group_body
-- on each element, vars naming the root's index space.
local function epilogue(K, root, members, p, vars, acc, last, len)
  local j = last.e
  K:loop(j, len)
  group_body(K, root, members, vars, p.id, fmt("%s[%s]", acc, j))
  K:close()
end

-- The index vars over a node's [B?, d1, d2, ...] for group_body: 'bname'
-- for the batch, names[k] for dimension k.
local function vars_of(K, n, bname, names)
  local vars, full, e = {}, {}, {}
  if n.batched then full[1], e[1] = K.batch, bname end
  for k, d in ipairs(n.shape) do full[#full + 1], e[#e + 1] = d, names[k] end
  local stride = 1
  for k = #full, 1, -1 do
    vars[k] = {e = e[k], n = full[k], w = stride}
    stride = stride * full[k]
  end
  return vars
end

------------------------------------------------------------------ conv2d

-- e / a * b: the first channel, b per group, of the group of channel e
-- (a per group).
local function regroup(e, a, b)
  if a == 1 then return cfmt.term(e, b) end
  return fmt("%s / %d * %d", e, a, b)
end

-- The input channel of group-local channel cv (nil: the group's only one)
-- of the group starting at c0.
local function channel(k, c0, cv)
  if k.groups == 1 then return cv end
  return cv and fmt("(%s + %s)", c0, cv) or c0
end

-- y[b, o, i, :] = sum over c, u, v of W[o, c, u, v] x[b, c0 + c, hi, :]:
-- one accumulator row per (b, o, i).
local function conv_forward(K, root, members, p)
  local q = geometry(K, p)
  local k = q.k
  local x, wt = p.inputs[1], p.inputs[2]
  local b, o, i, j, c, u = K:iname("b"), K:iname("o"), K:iname("i"), K:iname("j"),
    K:iname("c"), K:iname("u")
  local acc, hi, c0 = K:iname("acc"), K:iname("hi"), K:iname("c0")
  loop0(K, b, q.nb)
  K:loop(o, q.co)
  if k.groups > 1 then K:line(fmt("const int %s = %s;", c0, regroup(o, q.og, q.cg))) end
  K:loop(i, q.ho)
  K:line(fmt("%s %s[%d];", K.T, acc, q.wo))
  K:loop(j, q.wo)
  K:line(fmt("%s[%s] = %s;", acc, j, K:lit(0)))
  K:close()
  local cv = q.cg > 1 and c or nil  -- depthwise: one input channel per output
  loop0(K, c, q.cg)
  K:loop(u, k.kh)
  K:line(fmt("const int %s = %s;", hi, plus(sum({cfmt.term(i, k.sh), cfmt.term(u, k.dh)}), -k.pt)))
  local need = k.pt > 0 or (q.ho - 1) * k.sh + (k.kh - 1) * k.dh - k.pt >= q.h
  if need then K:line(fmt("if (%s < 0 || %s >= %d) continue;", hi, hi, q.h)) end
  local cc = channel(k, c0, cv)
  local xrow = at({q.xb and q.nb > 1 and b or nil, cc, hi, nil}, {q.nb, q.c, q.h, q.w})
  local wrow = at({o, cv, u, nil}, {q.co, q.cg, k.kh, k.kw})
  columns(K, q, function(v, j0, j1, off)
    local w = K:read(wt, sum({wrow ~= "0" and wrow or nil, v ~= 0 and tostring(v) or nil}))
    row(K, j, j0, j1, function(e)
      local xi = add(sum({xrow ~= "0" and xrow or nil, cfmt.term(e, k.sw)}), off)
      K:line(fmt("%s[%s] += %s * %s;", acc, e, w, K:read(x, xi)))
    end)
  end)
  K:close()
  K:close()
  local vars = vars_of(K, root, b, {o, i, j})
  epilogue(K, root, members, p, vars, acc, vars[#vars], q.wo)
  K:close()
  K:close()
  K:close()
end

-- dx[b, c, hi, :] = sum over the output channels of c's group and the
-- taps (u, v) reaching row hi of W[o, c', u, v] dy[b, o, i, j]: one
-- accumulator row per (b, c, hi), scattered to along j (stride sw).
local function conv_dx(K, root, members, p)
  local q = geometry(K, p)
  local k = q.k
  local dy, wt = p.inputs[1], p.inputs[2]
  local b, c, hi, wi, oo, u, t, i = K:iname("b"), K:iname("c"), K:iname("hi"), K:iname("wi"),
    K:iname("oo"), K:iname("u"), K:iname("t"), K:iname("i")
  local j, acc, o0 = K:iname("j"), K:iname("acc"), K:iname("o0")
  loop0(K, b, q.nb)
  K:loop(c, q.c)
  if k.groups > 1 then K:line(fmt("const int %s = %s;", o0, regroup(c, q.cg, q.og))) end
  K:loop(hi, q.h)
  K:line(fmt("%s %s[%d];", K.T, acc, q.w))
  K:loop(wi, q.w)
  K:line(fmt("%s[%s] = %s;", acc, wi, K:lit(0)))
  K:close()
  K:loop(oo, q.og)
  K:loop(u, k.kh)
  -- the output row i whose tap u reads row hi: i sh = hi + pt - u dh
  K:line(fmt("const int %s = %s - %s;", t, plus(hi, k.pt), cfmt.term(u, k.dh)))
  if k.sh > 1 then
    K:line(fmt("if (%s < 0 || %s %% %d != 0) continue;", t, t, k.sh))
    K:line(fmt("const int %s = %s / %d;", i, t, k.sh))
  else
    K:line(fmt("if (%s < 0) continue;", t))
    K:line(fmt("const int %s = %s;", i, t))
  end
  K:line(fmt("if (%s >= %d) continue;", i, q.ho))
  local oc = k.groups > 1 and fmt("(%s + %s)", o0, oo) or oo
  local cl = c  -- c's channel within its group (none when each group has one)
  if q.cg == 1 then cl = nil elseif k.groups > 1 then cl = fmt("(%s %% %d)", c, q.cg) end
  local dyrow = at({q.yb and q.nb > 1 and b or nil, oc, i, nil}, {q.nb, q.co, q.ho, q.wo})
  local wrow = at({oc, cl, u, nil}, {q.co, q.cg, k.kh, k.kw})
  columns(K, q, function(v, j0, j1, off)
    local w = K:read(wt, sum({wrow ~= "0" and wrow or nil, v ~= 0 and tostring(v) or nil}))
    row(K, j, j0, j1, function(e)
      K:line(fmt("%s[%s] += %s * %s;", acc, add(cfmt.term(e, k.sw), off), w,
        K:read(dy, sum({dyrow ~= "0" and dyrow or nil, e}))))
    end)
  end)
  K:close()
  K:close()
  local vars = vars_of(K, root, b, {c, hi, wi})
  epilogue(K, root, members, p, vars, acc, vars[#vars], q.w)
  K:close()
  K:close()
  K:close()
end

-- dW[o, c, u, v] = sum over b, i, j of dy[b, o, i, j] x[b, c0 + c, hi, wi]:
-- for each (o, c, u), one accumulator of a vector's lanes per kernel column
-- v (lane l sums the j of its chunks' lane l; the rest goes to lane 0).
local function conv_dw(K, root, members, p)
  local q = geometry(K, p)
  local k = q.k
  local dy, x = p.inputs[1], p.inputs[2]
  local o, c, u, v, b, i, j, hi = K:iname("o"), K:iname("c"), K:iname("u"), K:iname("v"),
    K:iname("b"), K:iname("i"), K:iname("j"), K:iname("hi")
  local acc, c0, l, sums = K:iname("acc"), K:iname("c0"), K:iname("l"), K:iname("sums")
  local L = K.block  -- lanes: each sum runs in L independent parts
  K:loop(o, q.co)
  if k.groups > 1 then K:line(fmt("const int %s = %s;", c0, regroup(o, q.og, q.cg))) end
  local cv = q.cg > 1 and c or nil  -- depthwise: one input channel per output
  loop0(K, c, q.cg)
  K:loop(u, k.kh)
  K:line(fmt("%s %s[%d][%d];", K.T, acc, k.kw, L))
  K:loop(v, k.kw)
  K:loop(l, L)
  K:line(fmt("%s[%s][%s] = %s;", acc, v, l, K:lit(0)))
  K:close()
  K:close()
  loop0(K, b, q.nb)
  K:loop(i, q.ho)
  K:line(fmt("const int %s = %s;", hi, plus(sum({cfmt.term(i, k.sh), cfmt.term(u, k.dh)}), -k.pt)))
  local need = k.pt > 0 or (q.ho - 1) * k.sh + (k.kh - 1) * k.dh - k.pt >= q.h
  if need then K:line(fmt("if (%s < 0 || %s >= %d) continue;", hi, hi, q.h)) end
  local cc = channel(k, c0, cv)
  local xrow = at({q.xb and q.nb > 1 and b or nil, cc, hi, nil}, {q.nb, q.c, q.h, q.w})
  local dyrow = at({q.yb and q.nb > 1 and b or nil, o, i, nil}, {q.nb, q.co, q.ho, q.wo})
  columns(K, q, function(vv, j0, j1, off)
    row(K, j, j0, j1, function(e, lane)
      local xi = add(sum({xrow ~= "0" and xrow or nil, cfmt.term(e, k.sw)}), off)
      K:line(fmt("%s[%s][%s] += %s * %s;", acc, vv, lane or "0",
        K:read(dy, sum({dyrow ~= "0" and dyrow or nil, e})), K:read(x, xi)))
    end)
  end)
  K:close()
  K:close()
  -- the lanes summed in order, then the epilogue on each kernel column's sum
  K:line(fmt("%s %s[%d];", K.T, sums, k.kw))
  K:loop(v, k.kw)
  K:line(fmt("%s[%s] = %s[%s][0];", sums, v, acc, v))
  K:open(fmt("for (int %s = 1; %s < %d; %s++)", l, l, L, l))
  K:line(fmt("%s[%s] += %s[%s][%s];", sums, v, acc, v, l))
  K:close()
  K:close()
  local vars = vars_of(K, root, nil, {o, cv or "0", u, v})
  epilogue(K, root, members, p, vars, sums, vars[#vars], k.kw)
  K:close()
  K:close()
  K:close()
end


------------------------------------------------------------------ tile form

-- The copy of an input row of w columns into a zero-padded, phase-split
-- row: column wi at padded column wi + pl = ph + sw m, stored at ph NP + m.
-- line(dst, col) prints one element's copy (index expressions); one loop
-- over wi when sw is 1, else one per phase ph over its m (strided reads,
-- unit-stride writes: one loop with % and / per element did not vectorize
-- and took a tenth of resnet8's step on AVX2).
local function split_row(K, wi, w, pl, sw, NP, line)
  if sw == 1 then
    K:loop(wi, w)
    line(plus(wi, pl), wi)
    K:close()
    return
  end
  for ph = 0, sw - 1 do
    local m0 = math.max(0, (pl - ph + sw - 1) // sw)
    local m1 = (w - 1 + pl - ph) // sw + 1
    if m1 > m0 then
      K:open(fmt("for (int %s = %d; %s < %d; %s++)", wi, m0, wi, m1, wi))
      line(plus(wi, ph * NP), plus(cfmt.term(wi, sw), ph - pl))
      K:close()
    end
  end
end

-- The tile form of a convolution (select_conv.c chose it and its register
-- tile t: t.v lanes, t.mr output channels by t.nr vectors of columns; on
-- a scalar FPU t.v = 1 and the "vectors" are single columns).  An
-- implicit GEMM, one output row i at a time: the cin x kh input rows the
-- row reads are copied into xr, zero-padded and split by stride phase
-- (input column p of the padded row at xr[p % sw][p / sw]), so that tap v
-- of output columns j.. reads xr[v dw % sw][j + v dw / sw ..], unit
-- stride, never out of range.  Then each tile sums over (c, u, v) in
-- registers: MR weights broadcast, NR vectors loaded, MR x NR
-- multiply-adds a step; the epilogue runs on the finished sums.  Sums in
-- the order (c, u, v), as the row form's.
--
-- g: the geometry of the convolution the form computes: nb samples, its
-- input (node x: cin channels, h x w, xb batched) and output (co, ho, wo),
-- the window (kh, kw, sh, sw, dh, dw, pt, pl, pr), widx(r, c, u, v): the
-- weight of output channel r, input channel c, tap (u, v) as an index
-- of node wt, and names: the epilogue's index names of (o, i, j).
local function tile_conv(K, root, members, p, t, g)
  local T, V, MR, NR = K.T, t.v, t.mr, t.nr
  local sw = g.sw
  local NP = (g.w + g.pl + g.pr + sw - 1) // sw
  local ROW = sw * NP
  local b, i, cu, c, u, e, wi, hi = K:iname("b"), K:iname("i"), K:iname("cu"), K:iname("c"),
    K:iname("u"), K:iname("e"), K:iname("wi"), K:iname("hi")
  local xr, d, xs, a, l = K:iname("xr"), K:iname("d"), K:iname("xs"), K:iname("a"), K:iname("l")
  loop0(K, b, g.nb)
  K:loop(i, g.ho)
  -- the padded input rows of output row i
  K:line(fmt("%s %s[%d];", T, xr, g.cin * g.kh * ROW))
  K:loop(cu, g.cin * g.kh)
  K:line(fmt("%s *%s = %s + %s;", T, d, xr, cfmt.term(cu, ROW)))
  K:loop(e, ROW)
  K:line(fmt("%s[%s] = %s;", d, e, K:lit(0)))
  K:close()
  local ce, ue = cu, "0"
  if g.kh > 1 then ce, ue = fmt("%s / %d", cu, g.kh), fmt("%s %% %d", cu, g.kh) end
  K:line(fmt("const int %s = %s;", hi, plus(sum({cfmt.term(i, g.sh), ue ~= "0" and
    cfmt.term("(" .. ue .. ")", g.dh) or nil}), -g.pt)))
  K:line(fmt("if (%s < 0 || %s >= %d) continue;", hi, hi, g.h))
  split_row(K, wi, g.w, g.pl, sw, NP, function(dst, col)
    local src = at({g.xb and g.nb > 1 and b or nil, g.cin > 1 and "(" .. ce .. ")" or nil, hi,
      col}, {g.nb, g.cin, g.h, g.w})
    K:line(fmt("%s[%s] = %s;", d, dst, K:read(g.x, src)))
  end)
  K:close()
  -- one tile: output channels o0 .. o0 + mr - 1, columns j0 + cc V + l
  -- (cc < ng, l < nl)
  local function tile(o0, mr, j0, ng, nl)
    K:open("")
    K:line(fmt("%s %s[%d][%d];", T, a, mr * ng, nl))
    -- lane loops carry GRADC_VECTOR: unrolled first, an 8-lane loop on
    -- AVX-512 became scalar code (resnet8's 8 x 8 layers at 3% of peak)
    local function lanes(body)
      if nl == 1 then K:open("") else K:loop(l, nl, true) end
      body(nl == 1 and "0" or l)
      K:close()
    end
    K:loop(e, mr * ng)
    lanes(function(lv) K:line(fmt("%s[%s][%s] = %s;", a, e, lv, K:lit(0))) end)
    K:close()
    loop0(K, c, g.cin)
    loop0(K, u, g.kh)
    local cv, uv = g.cin > 1 and c or "0", g.kh > 1 and u or "0"
    K:line(fmt("const %s *%s = %s + %s;", T, xs, xr,
      sum({cfmt.term(cv, g.kh * ROW), cfmt.term(uv, ROW)})))
    for v = 0, g.kw - 1 do
      local ph, off = v * g.dw % sw, v * g.dw // sw
      K:open("")
      for r = 0, mr - 1 do
        local o = plus(o0, r)
        if o:find(" ") then o = "(" .. o .. ")" end
        K:line(fmt("const %s %s = %s;", T, K:iname("w" .. r), K:read(g.wt, g.widx(o, cv, uv, v))))
      end
      lanes(function(lv)
        for cc = 0, ng - 1 do
          local xv = K:iname("x" .. cc)
          K:line(fmt("const %s %s = %s[%s];", T, xv, xs, sum({plus(j0, ph * NP + off + cc * V),
            lv ~= "0" and lv or nil})))
          for r = 0, mr - 1 do
            K:line(fmt("%s[%d][%s] += %s * %s;", a, r * ng + cc, lv, K:iname("w" .. r), xv))
          end
        end
      end)
      K:close()
    end
    K:close()
    K:close()
    -- the epilogue (scalar tiles element by element: the sums stay in registers)
    for r = 0, mr - 1 do
      for cc = 0, ng - 1 do
        lanes(function(lv)
          local j = sum({plus(j0, cc * V), lv ~= "0" and lv or nil})
          if j:find(" ") then j = "(" .. j .. ")" end
          local o = plus(o0, r)
          if o:find(" ") then o = "(" .. o .. ")" end
          group_body(K, root, members, vars_of(K, root, b, {o, i, j}), p.id,
            fmt("%s[%d][%s]", a, r * ng + cc, lv))
        end)
      end
    end
    K:close()
  end
  -- the row's columns: blocks of NR vectors, then whole vectors, then the rest
  local function columns_of(o0, mr)
    local span = NR * V
    local full = g.wo // span
    if full > 1 then
      local j0 = K:iname("j0")
      K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", j0, j0, full * span, j0, span))
      tile(o0, mr, j0, NR, V)
      K:close()
    elseif full == 1 then
      tile(o0, mr, "0", NR, V)
    end
    local at_, rest = full * span, g.wo - full * span
    if rest >= V then
      tile(o0, mr, tostring(at_), rest // V, V)
      at_, rest = at_ + rest // V * V, rest % V
    end
    if rest > 0 then tile(o0, mr, tostring(at_), 1, rest) end
  end
  channel_blocks(K, g.co, MR, columns_of)
  K:close()
  K:close()
end

-- The tile form's geometry of conv2d p: the convolution itself.
local function forward_geometry(K, p)
  local q = geometry(K, p)
  local k = q.k
  local KK = q.cg * k.kh * k.kw
  return {nb = q.nb, xb = q.xb, x = p.inputs[1], wt = p.inputs[2], cin = q.c, h = q.h, w = q.w,
    co = q.co, ho = q.ho, wo = q.wo, kh = k.kh, kw = k.kw, sh = k.sh, sw = k.sw, dh = k.dh,
    dw = k.dw, pt = k.pt, pl = k.pl, pr = k.pr, wv = 1,
    widx = function(r, c, u, v)
      return sum({cfmt.term(r, KK), cfmt.term(c, k.kh * k.kw), cfmt.term(u, k.kw),
        v ~= 0 and tostring(v) or nil})
    end}
end

-- conv2d_dx p (stride and dilation 1) as the tile form's convolution: of
-- dy [co, ho, wo] by the transposed, flipped weights W'[c][o][u][v] =
-- W[o][c][kh - 1 - u][kw - 1 - v], padded kh - 1 - pt above and kw - 1 -
-- pl left, into dx [c, h, w].
local function dx_geometry(K, p)
  local q = geometry(K, p)
  local k = q.k
  local pl = k.kw - 1 - k.pl
  return {nb = q.nb, xb = q.yb, x = p.inputs[1], wt = p.inputs[2], cin = q.co, h = q.ho,
    w = q.wo, co = q.c, ho = q.h, wo = q.w, kh = k.kh, kw = k.kw, sh = 1, sw = 1, dh = 1, dw = 1,
    pt = k.kh - 1 - k.pt, pl = pl, pr = q.w - 1 + k.kw - q.wo - pl, wv = -1,
    widx = function(r, c, u, v)
      -- o = c, the flipped tap (kh - 1 - u, kw - 1 - v) of channel r
      return plus(sum({cfmt.term(c, q.c * k.kh * k.kw), cfmt.term(r, k.kh * k.kw),
        u ~= "0" and cfmt.term(u, -k.kw) or nil}), (k.kh - 1) * k.kw + k.kw - 1 - v)
    end}
end

-- The weight gradient in the tile form (select_conv.c: t.v lanes, t.mr
-- output channels): dW[o][c][u][v] = sum over (b, i, j) of dy[b, o, i, j]
-- x[b, c, hi, j sw + v dw - pl].  For each block of MR output channels
-- and each (c, u), MR x kw accumulators of V lanes sum over the samples
-- and output rows; input row hi is copied into a zero-padded, phase-split
-- row (as the forward's; the padding is zeroed once, the copies never
-- write it), so every tap reads unit-stride vectors along j; each chunk
-- of lanes loads MR values of dy and kw of the row for MR x kw
-- multiply-adds.  The lanes are summed in order at the end, then the
-- epilogue (the SGD update) runs on each weight's sum.
local function tile_dw(K, root, members, p, t)
  local q = geometry(K, p)
  local k = q.k
  local T, V, MR = K.T, t.v, t.mr
  local dy, x = p.inputs[1], p.inputs[2]
  local sw = k.sw
  local NP = (q.w + k.pl + k.pr + sw - 1) // sw
  local ROW = sw * NP
  local nl = math.min(V, q.wo)
  local ROWS = t.kc > 1 and t.kc or 1  -- rows buffered: 1, or every output row's
  local b, i, c, u, e, wi, hi, l = K:iname("b"), K:iname("i"), K:iname("c"), K:iname("u"),
    K:iname("e"), K:iname("wi"), K:iname("hi"), K:iname("l")
  local xr, a, s_ = K:iname("xr"), K:iname("a"), K:iname("sum")
  K:open("")
  K:line(fmt("%s %s[%d];", T, xr, ROWS * ROW))
  K:loop(e, ROWS * ROW)
  K:line(fmt("%s[%s] = %s;", xr, e, K:lit(0)))
  K:close()
  local function block(o0, mr)
    loop0(K, c, q.c)
    loop0(K, u, k.kh)
    local cv, uv = q.c > 1 and c or nil, k.kh > 1 and u or "0"
    K:line(fmt("%s %s[%d][%d];", T, a, mr * k.kw, nl))
    K:loop(e, mr * k.kw)
    if nl > 1 then K:loop(l, nl, true) else K:open("") end
    K:line(fmt("%s[%s][%s] = %s;", a, e, nl > 1 and l or "0", K:lit(0)))
    K:close()
    K:close()
    loop0(K, b, q.nb)
    local need = k.pt > 0 or (q.ho - 1) * k.sh + (k.kh - 1) * k.dh - k.pt >= q.h
    local function row_i(copy)
      K:loop(i, q.ho)
      if not copy and not need then return end
      K:line(fmt("const int %s = %s;", hi, plus(sum({cfmt.term(i, k.sh), cfmt.term(uv, k.dh)}),
        -k.pt)))
      if need then K:line(fmt("if (%s < 0 || %s >= %d) continue;", hi, hi, q.h)) end
    end
    -- input row hi into row i of the buffer (ROWS > 1: the sample's rows
    -- first, then the sums: a row read right after it is written made
    -- every load wait for the copy's stores on x86, ~10% of resnet8's step)
    row_i(true)
    split_row(K, wi, q.w, k.pl, sw, NP, function(dst, col)
      local src = at({q.xb and q.nb > 1 and b or nil, cv, hi, col}, {q.nb, q.c, q.h, q.w})
      if ROWS > 1 then dst = sum({cfmt.term(i, ROW), dst}) end
      K:line(fmt("%s[%s] = %s;", xr, dst, K:read(x, src)))
    end)
    if ROWS > 1 then
      K:close()
      row_i(false)
    end
    -- chunks of nl columns, then the rest
    local function chunk(j0, n)
      local lv = n > 1 and l or "0"
      if n > 1 then K:loop(l, n, true) else K:open("") end
      local jl = sum({j0 ~= "0" and j0 or nil, lv ~= "0" and lv or nil})
      for r = 0, mr - 1 do
        local o = plus(o0, r)
        if o:find(" ") then o = "(" .. o .. ")" end
        local di = at({q.yb and q.nb > 1 and b or nil, o, i, nil}, {q.nb, q.co, q.ho, q.wo})
        K:line(fmt("const %s %s = %s;", T, K:iname("d" .. r), K:read(dy, sum({di ~= "0" and di or
          nil, jl ~= "0" and jl or nil}))))
      end
      for v = 0, k.kw - 1 do
        local ph, off = v * k.dw % sw, v * k.dw // sw
        local xv = K:iname("x" .. v)
        local xi = sum({tostring(ph * NP + off), jl ~= "0" and jl or nil})
        if ROWS > 1 then xi = cfmt.term(i, ROW) .. " + " .. xi end
        K:line(fmt("const %s %s = %s[%s];", T, xv, xr, xi))
        for r = 0, mr - 1 do
          K:line(fmt("%s[%d][%s] += %s * %s;", a, r * k.kw + v, lv, K:iname("d" .. r), xv))
        end
      end
      K:close()
    end
    local full = q.wo // nl
    if full > 1 then
      local j0 = K:iname("j0")
      K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", j0, j0, full * nl, j0, nl))
      chunk(j0, nl)
      K:close()
    else
      chunk("0", nl)
    end
    if q.wo % nl > 0 then chunk(tostring(full * nl), q.wo % nl) end
    K:close()
    K:close()
    -- each weight's lanes summed in order, then the epilogue
    for r = 0, mr - 1 do
      for v = 0, k.kw - 1 do
        K:open("")
        lane_total(K, s_, a, r * k.kw + v, nl, l)
        local o = plus(o0, r)
        if o:find(" ") then o = "(" .. o .. ")" end
        group_body(K, root, members, vars_of(K, root, nil, {o, cv or "0", uv, tostring(v)}), p.id,
          s_)
        K:close()
      end
    end
    K:close()
    K:close()
  end
  channel_blocks(K, q.co, MR, block)
  K:close()
end

-- what conv_dx.lua, conv_scalar.lua and dwconv.lua (the strided input
-- gradient's, the scalar FPU's and the depthwise tile forms) print with
M.helpers = {geometry = geometry, at = at, plus = plus, vars_of = vars_of, loop0 = loop0,
  channel_blocks = channel_blocks, lane_total = lane_total}

local CONV = {conv2d = conv_forward, conv2d_dx = conv_dx, conv2d_dw = conv_dw}
local TILE_GEO = {conv2d = forward_geometry, conv2d_dx = dx_geometry}

-- The group of a convolution p (the root or fused into it): the row form,
-- or the kernel of each register shape select_conv.c chose a record for
-- (p.mm.tiles: one, or portable's three under #if GRADC_KERNELS), the
-- tile form or the row form.  The strided (or dilated) input gradient's
-- tile is conv_dx.lua's, a scalar FPU's in-place tile (mb 1)
-- conv_scalar.lua's.
function M.conv_group(K, root, members, p)
  local tiles = p.mm and p.mm.tiles or {}
  if #tiles == 0 then return CONV[p.op](K, root, members, p) end
  for n, t in ipairs(tiles) do
    if #tiles > 1 then
      K:directive(n == 1 and fmt("#if GRADC_KERNELS == %d", t.kernels) or
        n < #tiles and fmt("#elif GRADC_KERNELS == %d", t.kernels) or "#else")
    end
    local k = p.win
    if t.form == "tile" and k.groups > 1 then
      dwconv.print(K, M.helpers, root, members, p, t)
    elseif t.form == "tile" and p.op == "conv2d_dw" then
      tile_dw(K, root, members, p, t)
    elseif t.form == "tile" and p.op == "conv2d_dx" and k.sh * k.sw * k.dh * k.dw > 1 then
      require("conv_dx").tile_dx(K, root, members, p, t, M.helpers)
    elseif t.form == "tile" and t.mb == 1 then  -- a scalar FPU's, reading in place
      require("conv_scalar").tile_direct(K, root, members, p, t, TILE_GEO[p.op](K, p), M.helpers)
    elseif t.form == "tile" then
      tile_conv(K, root, members, p, t, TILE_GEO[p.op](K, p))
    else
      CONV[p.op](K, root, members, p)
    end
  end
  if #tiles > 1 then K:directive("#endif") end
end

------------------------------------------------------------------ pools

-- Loops over the windows of pool node n (or its gradient): body(base,
-- oi, ha, hb, wa, wb) with the C expressions of the sample-channel plane's
-- offset in x, the output element's offset, and the window clipped to the
-- input: rows [ha, hb), columns [wa, wb).
local function windows(K, n, q, body)
  local k = q.k
  local b, c, i, j = K:iname("b"), K:iname("c"), K:iname("i"), K:iname("j")
  loop0(K, b, q.nb)
  K:loop(c, q.c)
  K:loop(i, q.ho)
  K:loop(j, q.wo)
  local function clip(v, s, pad, kk, size, lo_pad, hi_pad, name)
    local a, e = K:iname(name .. "a"), K:iname(name .. "b")
    local start = plus(cfmt.term(v, s), -pad)
    if lo_pad > 0 then
      K:line(fmt("const int %s = %s < 0 ? 0 : %s;", a, start, start))
    else
      K:line(fmt("const int %s = %s;", a, start))
    end
    if hi_pad > 0 then
      K:line(fmt("const int %s = %s + %d > %d ? %d : %s + %d;", e, start, kk, size, size, start, kk))
    else
      K:line(fmt("const int %s = %s + %d;", e, start, kk))
    end
    return a, e
  end
  local ha, hb = clip(i, k.sh, k.pt, k.kh, q.h, k.pt, k.pb, "h")
  local wa, wb = clip(j, k.sw, k.pl, k.kw, q.w, k.pl, k.pr, "w")
  local base = at({q.xb and q.nb > 1 and b or nil, c, nil, nil}, {q.nb, q.c, q.h, q.w})
  local oi = at({n.batched and q.nb > 1 and b or nil, c, i, j}, {q.nb, q.c, q.ho, q.wo})
  body(base ~= "0" and base or nil, oi, ha, hb, wa, wb)
  for _ = 1, 4 do K:close() end
end

-- The element (r, s) of the plane at 'base' with w columns.
local function tap(base, r, s, w)
  return sum({base, cfmt.term(r, w), s})
end

local function zero(K, n)
  local e = K:iname("e")
  K:loop(e, cfmt.numel(cfmt.full(n, K.batch)))
  K:line(fmt("%s[%s] = %s;", K:ptr(n.id), e, K:lit(0)))
  K:close()
end

local kernel = {}
M.kernel = kernel

-- y = the first maximum of each window (padding never wins).
kernel.maxpool2d = function(K, n)
  local q = geometry(K, n)
  local x = n.inputs[1]
  windows(K, n, q, function(base, oi, ha, hb, wa, wb)
    local m, r, s = K:iname("m"), K:iname("r"), K:iname("s")
    K:line(fmt("%s %s = %s;", K.T, m, K:read(x, tap(base, ha, wa, q.w))))
    K:open(fmt("for (int %s = %s; %s < %s; %s++)", r, ha, r, hb, r))
    K:open(fmt("for (int %s = %s; %s < %s; %s++)", s, wa, s, wb, s))
    local xv = K:read(x, tap(base, r, s, q.w))
    K:open(fmt("if (%s > %s)", xv, m))
    K:line(fmt("%s = %s;", m, xv))
    K:close()
    K:close()
    K:close()
    K:line(fmt("%s[%s] = %s;", K:ptr(n.id), oi, m))
  end)
end

-- dx: each window's dy added at its first maximum (as the forward found it).
kernel.maxpool2d_grad = function(K, n)
  local q = geometry(K, n)
  local dy, x = n.inputs[1], n.inputs[2]
  zero(K, n)
  windows(K, n, q, function(base, oi, ha, hb, wa, wb)
    local m, at_, r, s = K:iname("m"), K:iname("at"), K:iname("r"), K:iname("s")
    local first = tap(base, ha, wa, q.w)
    K:line(fmt("int %s = %s;", at_, first))
    K:line(fmt("%s %s = %s;", K.T, m, K:read(x, at_)))
    K:open(fmt("for (int %s = %s; %s < %s; %s++)", r, ha, r, hb, r))
    K:open(fmt("for (int %s = %s; %s < %s; %s++)", s, wa, s, wb, s))
    local xi = tap(base, r, s, q.w)
    K:open(fmt("if (%s > %s)", K:read(x, xi), m))
    K:line(fmt("%s = %s;", m, K:read(x, xi)))
    K:line(fmt("%s = %s;", at_, xi))
    K:close()
    K:close()
    K:close()
    K:line(fmt("%s[%s] += %s;", K:ptr(n.id), at_, K:read(dy, oi)))
  end)
end

-- The divisor of a window: its whole size, or the elements inside.
local function count(K, q, ha, hb, wa, wb)
  if q.k.count_pad then return K:lit(q.k.kh * q.k.kw) end
  return fmt("(%s)((%s - %s) * (%s - %s))", K.T, hb, ha, wb, wa)
end

-- y = the mean of each window.
kernel.avgpool2d = function(K, n)
  local q = geometry(K, n)
  local x = n.inputs[1]
  windows(K, n, q, function(base, oi, ha, hb, wa, wb)
    local a, r, s = K:iname("sum"), K:iname("r"), K:iname("s")
    K:line(fmt("%s %s = %s;", K.T, a, K:lit(0)))
    K:open(fmt("for (int %s = %s; %s < %s; %s++)", r, ha, r, hb, r))
    K:open(fmt("for (int %s = %s; %s < %s; %s++)", s, wa, s, wb, s))
    K:line(fmt("%s += %s;", a, K:read(x, tap(base, r, s, q.w))))
    K:close()
    K:close()
    K:line(fmt("%s[%s] = %s / %s;", K:ptr(n.id), oi, a, count(K, q, ha, hb, wa, wb)))
  end)
end

-- dx: each window's dy / count added to its elements.
kernel.avgpool2d_grad = function(K, n)
  local q = geometry(K, n)
  local dy = n.inputs[1]
  zero(K, n)
  windows(K, n, q, function(base, oi, ha, hb, wa, wb)
    local d, r, s = K:iname("d"), K:iname("r"), K:iname("s")
    K:line(fmt("const %s %s = %s / %s;", K.T, d, K:read(dy, oi), count(K, q, ha, hb, wa, wb)))
    K:open(fmt("for (int %s = %s; %s < %s; %s++)", r, ha, r, hb, r))
    K:open(fmt("for (int %s = %s; %s < %s; %s++)", s, wa, s, wb, s))
    K:line(fmt("%s[%s] += %s;", K:ptr(n.id), tap(base, r, s, q.w), d))
    K:close()
    K:close()
  end)
end

------------------------------------------------------------------ copies

-- Copy 'count' elements per sample: y[b * ystride + yoff + e] =
-- x[b * xstride + xoff + e] (xstride 0: x unbatched).
local function copy(K, y, yoff, ystride, x, xoff, xstride, count, nb)
  local b, e = K:iname("b"), K:iname("e")
  loop0(K, b, nb)
  K:loop(e, count)
  local ys = sum({nb > 1 and cfmt.term(b, ystride) or nil, yoff > 0 and tostring(yoff) or nil, e})
  local xs = sum({nb > 1 and cfmt.term(b, xstride) or nil, xoff > 0 and tostring(xoff) or nil, e})
  K:line(fmt("%s[%s] = %s;", K:ptr(y), ys, K:read(x, xs)))
  K:close()
  K:close()
end

-- The same elements in another shape: nothing to do in place.
kernel.reshape = function(K, n)
  local x = n.operands[1]
  if n.in_place then  -- emit.c: the planner gave both the same bytes
    K:line(fmt("/* in place: %s already holds these elements */", K:name(n.id)))
    return
  end
  local m = cfmt.numel(cfmt.full(n, K.batch))
  copy(K, n.id, 0, 0, x.id, 0, 0, m, 1)
end

-- Each input's elements after the previous ones', sample by sample.
kernel.concat = function(K, n)
  local nb = n.batched and K.batch or 1
  local total, off = cfmt.numel(n.shape), 0
  for _, x in ipairs(n.operands) do
    local m = cfmt.numel(x.shape)
    copy(K, n.id, off, total, x.id, 0, x.batched and m or 0, m, nb)
    off = off + m
  end
end

-- This node's elements of each sample of the input from attr[1] on.
kernel.slice = function(K, n)
  local x = n.operands[1]
  local nb = n.batched and K.batch or 1
  local m = cfmt.numel(n.shape)
  copy(K, n.id, 0, m, x.id, math.tointeger(n.attr[1]), x.batched and cfmt.numel(x.shape) or 0, m, nb)
end

return M
