-- gemm.lua: the kernel of a group around a matrix product, in the form
-- select.c chose (Matmul.form); the group's elementwise nodes run as its
-- epilogue on the finished sums (bias, activation, activation derivative,
-- weight decay, optimizer update).
--
--   xt      C = X W^T with Matmul.pack (optimize.c: 16+ rows, 64+
--           columns): blocks of X^T packed into the kernel's arena
--           scratch, then the tile form on C^T = W X^T;
--   lane    C = L R^T otherwise (batch 1): MR x NR tiles of accumulators
--           of V lanes over k, summed by halves at the end (in f32 with
--           gradc_rowsum16_f32 where GRADC_ROWSUM16: the one optional,
--           non-C99 path, same tree, same bits);
--   packed  the same with a short k, 16+ rows and few columns: panels of
--           R^T packed into a stack buffer (Matmul.mb, kc: within the
--           target's stack), rank-1 tiles (not with --no-pack);
--   panel   the packed form's case on 16 registers (AVX2): R^T packed
--           whole (k x NR vectors) to the stack, then the tile form over
--           every row; with few columns, X^T's blocks (the xt form with
--           its block on the stack, Tile.mb rows);
--   tile    C = L R or L^T R (backward dY W, dY^T X): MR rows x G V
--           columns of accumulators, rank-1 updates over k (k == 1: the
--           outer product, straight into the epilogue); with Tile.mb,
--           L^T R by blocks of MB rows, L^T's block copied to the stack
--           first (select.c's lt_block: rows of L 2 KiB apart and more);
--   simple  one scalar dot or one row of V accumulators per row: small or
--           repeated products, and every product of a --no-fuse build
--           (the naive baseline).
-- Each product is printed once per register shape of the target (Matmul
-- tiles from select.c: one, or portable's three under #if GRADC_KERNELS;
-- matmul_group), with V = K.block the shape's lanes (16 f32 on AVX-512,
-- 8 on AVX2, 1 on a scalar FPU, where a "vector" is one float register
-- and the tiles are 4 x 4 scalars) and the register tile select.c chose
-- (K.tile.mr, nr, mb, kc).  Every inner loop is unit-stride and exactly
-- one vector wide with independent lanes, so gcc and clang vectorize it at
-- -O2/-O3 without -ffast-math and keep the accumulators in registers; sums
-- differ from the simple forms by reassociation only.  Short innermost
-- loops carry GRADC_VECTOR (gradc_rt.h), which keeps GCC from unrolling
-- them and vectorizing the loop around them instead.
--
-- Limits: tiles hold the whole k range in registers (no k blocking but in
-- the packed form), so very long k streams its operands from L2; the
-- unrolling is bounded by the tile (at most 8 rows, 16 accumulators).
-- Stack: the packed form's buffers (<= the target's stack_bytes), the
-- tiles' accumulators (<= 16 V elements, 1 KiB f32); the xt form's scratch
-- is in the arena, planned and reported (--no-pack: none).  With GCC,
-- strict ISO modes (-std=c99) disable contraction into FMA;
-- -ffp-contract=fast (the GNU-mode default) gives it back.

local cfmt = require "cfmt"
local group = require "group"

local M = {}
local fmt = string.format
local full, group_body, sgd_gradient = group.full, group.group_body,
  group.sgd_gradient

-- A group around a matrix product C = op(L) op(R) (Node.mm), nb times,
-- in the simple forms: one scalar dot per element, or one row block of
-- accumulators per row.  Small products, repeated products, both operands
-- transposed, and every product of a --no-fuse build (the baseline).
local function simple_product(K, root, members, p)
  local mm, T = p.mm, K.T
  local Lid, Rid = p.inputs[1], p.inputs[2]
  local rv = mm.nb > 1 and K:iname("r") or nil
  local iv = mm.m > 1 and K:iname("i") or nil
  local qv = K:iname("k")
  local function L(q)
    local t = {rv and cfmt.term(rv, mm.sl)}
    if mm.ta then
      t[2], t[3] = cfmt.term(q, mm.m), cfmt.term(iv, 1)
    else
      t[2], t[3] = cfmt.term(iv, mm.k), cfmt.term(q, 1)
    end
    return K:read(Lid, cfmt.sum(t, 3))
  end
  local function R(q, j)
    local t = {rv and cfmt.term(rv, mm.sr)}
    if mm.tb then
      t[2], t[3] = cfmt.term(j, mm.k), cfmt.term(q, 1)
    else
      t[2], t[3] = cfmt.term(q, mm.n), cfmt.term(j, 1)
    end
    return K:read(Rid, cfmt.sum(t, 3))
  end
  local function vars_for(j)
    local v = {}
    if rv and not mm.acc then v[#v + 1] = {e = rv, n = mm.nb, w = mm.sc} end
    if iv then v[#v + 1] = {e = iv, n = mm.m, w = mm.n} end
    if j then v[#v + 1] = {e = j, n = mm.n, w = 1} end
    return v
  end
  -- the reduction over k (and over the repetitions when they are summed)
  local function reduce(body)
    if rv and mm.acc then K:loop(rv, mm.nb) end
    if mm.k > 1 then
      K:loop(qv, mm.k)
      body(qv)
      K:close()
    else
      body("0")
    end
    if rv and mm.acc then K:close() end
  end
  if rv and not mm.acc then K:loop(rv, mm.nb) end
  if iv then K:loop(iv, mm.m) end
  if mm.tb or mm.n == 1 then
    -- dot form: both operands unit-stride along k when tb and not ta
    local jv = mm.n > 1 and K:iname("j") or nil
    if jv then K:loop(jv, mm.n) else K:open("") end
    local acc = K:iname("acc")
    K:line(fmt("%s %s = %s;", T, acc, K:lit(0)))
    reduce(function(q)
      K:line(fmt("%s += %s * %s;", acc, L(q), R(q, jv)))
    end)
    group_body(K, root, members, vars_for(jv), p.id, acc)
    K:close()
  else
    -- axpy form: a row block of accumulators, R read unit-stride along j
    local JB = K.block
    local function block(j0, width)
      local jj = K:iname(j0 and "jj" or "j")
      local acc, l = K:iname("acc"), K:iname("a")
      local jexpr = j0 and fmt("(%s + %s)", j0, jj) or jj
      if j0 == nil or j0:match("^%d") then K:open("") end
      K:line(fmt("%s %s[%d];", T, acc, width))
      K:loop(jj, width, true)
      K:line(fmt("%s[%s] = %s;", acc, jj, K:lit(0)))
      K:close()
      reduce(function(q)
        K:line(fmt("const %s %s = %s;", T, l, L(q)))
        K:loop(jj, width, true)
        K:line(fmt("%s[%s] += %s * %s;", acc, jj, l, R(q, jexpr)))
        K:close()
      end)
      K:loop(jj, width, true)
      group_body(K, root, members, vars_for(jexpr), p.id, fmt("%s[%s]", acc, jj))
      K:close()
      if j0 == nil or j0:match("^%d") then K:close() end
    end
    if mm.n <= JB then
      block(nil, mm.n)
    else
      local nfull = mm.n - mm.n % JB
      local j0 = K:iname("j0")
      K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", j0, j0, nfull, j0, JB))
      block(j0, JB)
      K:close()
      if nfull < mm.n then block(cfmt.int(nfull), mm.n - nfull) end
    end
  end
  if iv then K:close() end
  if rv and not mm.acc then K:close() end
end

-- base + c as C text: a literal when base is one, else "(base + c)".
local function plus(base, c)
  if type(base) == "number" then return cfmt.int(base + c) end
  if c == 0 then return base end
  return fmt("(%s + %d)", base, c)
end

-- The largest d in [lo, hi] dividing n, or nil.
local function divisor(n, lo, hi)
  for d = math.min(hi, n), math.max(lo, 1), -1 do
    if n % d == 0 then return d end
  end
  return nil
end

-- Tiles of the index range [0, n): 'step' wide blocks then a tail.  Calls
-- tile(start, width, body) with start a number (a single or tail block)
-- or a loop variable named after 'var' (the full blocks); body is true
-- inside the loop (a block of its own for declarations).
local function blocks(K, var, n, step, tile)
  local full = n - n % step
  if full == step then
    tile(0, step, false)
  elseif full > 0 then
    local v = K:iname(var)
    K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", v, v, full, v, step))
    tile(v, step, true)
    K:close()
  end
  if full < n then tile(full, n - full, false) end
end

-- Sum the V lanes of row a (C text: "sum", "d[t]") by halves in place
-- down to 4 (loops over lane variable l), and return the C text adding
-- the last four: a fixed tree, the same in every kernel.
local function last4(K, a)
  if K.block < 4 then  -- scalar tiles: one lane (or two)
    return K.block == 1 and fmt("%s[0]", a) or fmt("(%s[0] + %s[1])", a, a)
  end
  return fmt("(%s[0] + %s[2]) + (%s[1] + %s[3])", a, a, a, a)
end

-- A loop over the lanes of one of the form's vectors (n <= K.block).  In
-- the packed form on registers of fewer than 16 lanes (AVX2's 8), GCC
-- unrolls these loops and vectorizes the loop around them through
-- shuffles instead (digits at 3x OpenBLAS), so they carry GRADC_VECTOR
-- there (select.c now gives such shapes the lane form instead; this
-- stays for a row that packs on them); in the lane form the pragma costs
-- 40% more instructions (mnist1), in the tile form it changes nothing,
-- and AVX-512's loops are left as they are.
local function lanes(K, l, n)
  local reg = K.tile.reg or K.block
  K:loop(l, n, K.tile.form == "packed" and reg > 1 and reg < 16)
end

local function halves(K, a, l)
  local w = K.block
  while w > 4 do
    w = w // 2
    K:loop(l, w)
    K:line(fmt("%s[%s] += %s[%s + %d];", a, l, a, l, w))
    K:close()
  end
  return last4(K, a)
end

-- Index variables of C's element (row, column): the epilogue's vars.
local function c_vars(mm, row, col)
  local v = {}
  if mm.m > 1 then v[#v + 1] = {e = row, n = mm.m, w = mm.n} end
  if mm.n > 1 then v[#v + 1] = {e = col, n = mm.n, w = 1} end
  return v
end

-- e * c as a term of a sum (nil for 0), folded when e is a literal.
local function times(e, c)
  local v = math.tointeger(tonumber(e))
  if v then return v * c ~= 0 and cfmt.int(v * c) or nil end
  return cfmt.term(e, c)
end

-- L[row][q] and R[q][col] of C = op(L) op(R) (nb == 1), C text.
local function operands(K, p)
  local mm = p.mm
  local Lid, Rid = p.inputs[1], p.inputs[2]
  local function L(row, q)
    if mm.ta then return K:read(Lid, cfmt.sum({times(q, mm.m), times(row, 1)}, 2)) end
    return K:read(Lid, cfmt.sum({times(row, mm.k), times(q, 1)}, 2))
  end
  local function R(q, col)
    if mm.tb then return K:read(Rid, cfmt.sum({times(col, mm.k), times(q, 1)}, 2)) end
    return K:read(Rid, cfmt.sum({times(q, mm.n), times(col, 1)}, 2))
  end
  return L, R
end

-- k == 1: C is an outer product, each element one multiplication in the
-- epilogue (rows outside, the unit-stride columns inside).  When a plain
-- SGD step of a fused build takes C as its gradient (the batch-1 dW of a
-- layer), lr L[row] is taken once per row, so that each element of W
-- costs a multiplication and an FMA instead of three operations: the
-- step is the pass over the weights that a batch-1 training step cannot
-- avoid, and at three operations it is bound by them rather than by
-- memory.  (lr L) R for lr (L R): a reassociation.
local function outer_product(K, root, members, p)
  local mm = p.mm
  local L, R = operands(K, p)
  local i, j = K:iname("i"), K:iname("j")
  if mm.m > 1 then K:loop(i, mm.m) else K:open("") end
  local row, col = mm.m > 1 and i or "0", mm.n > 1 and j or "0"
  local lrl
  if sgd_gradient(K, root) == p.id then
    lrl = K:iname("c")
    K:line(fmt("const %s %s = %s * %s;", K.T, lrl, K.upd.lr, L(row, "0")))
  end
  if mm.n > 1 then K:loop(j, mm.n, mm.m > 1 and mm.n <= 2 * K.block) else K:open("") end
  group_body(K, root, members, c_vars(mm, row, col), p.id,
    fmt("%s * %s", L(row, "0"), R("0", col)), lrl and fmt("%s * %s", lrl, R("0", col)))
  K:close()
  K:close()
end

-- Lane form, for L and R both unit-stride along k (C = L R^T, the forward
-- product X W^T): a tile of MR rows of L by NR rows of R keeps MR * NR
-- accumulators of V lanes each, lane l summing the terms k = l (mod V),
-- so the loop over the lanes is independent and vectorizes without
-- reassociation; the lanes are summed by halves (a fixed tree) at the end.
-- Each step over k loads MR + NR vectors for MR * NR vector FMAs.
--
-- At one row (batch 1) every element of R is loaded exactly once, so the
-- sumsq(R) that select.c names in p.side (the L2 penalty) is summed here
-- too, from the registers (sq: NR more accumulators of V lanes, each
-- tile's lanes added to a function-level total that the sumsq kernel then
-- stores): one pass over the weights instead of two.
local function lane_product(K, root, members, p)
  local mm, T, V = p.mm, K.T, K.block
  local L, R = operands(K, p)
  -- summed over the batch (a pointwise convolution's dW = sum_b dy_b x_b^T,
  -- select.c): every step over k runs for each sample r, L and R sl and sr
  -- apart
  local rb = mm.nb > 1 and K:iname("r") or nil
  if rb then
    L = function(row, q)
      return K:read(p.inputs[1], cfmt.sum({cfmt.term(rb, mm.sl), times(row, mm.k), times(q, 1)}, 3))
    end
    R = function(q, col)
      return K:read(p.inputs[2], cfmt.sum({cfmt.term(rb, mm.sr), times(col, mm.k), times(q, 1)}, 3))
    end
  end
  local MR, NR = K.tile.mr, K.tile.nr  -- select.c
  local kfull = mm.k - mm.k % V
  local S = p.side >= 0 and p.side or nil  -- select.c, step 2
  local total, sq = nil, K:iname("sq")
  if S and K.sq[S] then  -- another register shape's kernel declared it
    total = K.sq[S]
  elseif S then
    total = K:iname("ssq_" .. p.side_label)
    K.sq[S] = total
    K.fdecl[#K.fdecl + 1] = fmt("%s %s = %s;  /* sumsq(%s), summed in the product's kernel */", T,
      total, K:lit(0), p.side_label)
  end
  blocks(K, "j0", mm.n, NR, function(j0, nr)
    blocks(K, "i0", mm.m, MR, function(i0, mr, inloop)
      local d, l, q, t = K:iname("d"), K:iname("l"), K:iname("k0"), K:iname("t")
      local nt = mr * nr
      if not inloop then K:open("") end
      K:line(fmt("%s %s[%d][%d];", T, d, nt, V))
      if S then K:line(fmt("%s %s[%d][%d];", T, sq, nr, V)) end
      K:loop(t, nt)
      lanes(K, l, V)
      K:line(fmt("%s[%s][%s] = %s;", d, t, l, K:lit(0)))
      if S and nt == nr then K:line(fmt("%s[%s][%s] = %s;", sq, t, l, K:lit(0))) end
      K:close()
      K:close()
      local function step(k0, width)
        lanes(K, l, width)
        local kk = k0 == "0" and l or fmt("%s + %s", k0, l)
        for a = 0, mr - 1 do
          K:line(fmt("const %s %s = %s;", T, K:iname("x" .. a), L(plus(i0, a), kk)))
        end
        for b = 0, nr - 1 do
          K:line(fmt("const %s %s = %s;", T, K:iname("w" .. b), R(kk, plus(j0, b))))
        end
        for a = 0, mr - 1 do
          for b = 0, nr - 1 do
            K:line(fmt("%s[%d][%s] += %s * %s;", d, a * nr + b, l, K:iname("x" .. a), K:iname("w" .. b)))
          end
        end
        if S then
          for b = 0, nr - 1 do
            local w = K:iname("w" .. b)
            K:line(fmt("%s[%d][%s] += %s * %s;", sq, b, l, w, w))
          end
        end
        K:close()
      end
      -- scalar f32 tiles: two values of k per step, each pair one load
      -- (GRADC_LOAD2), the terms of each accumulator still in k order
      local function step2(k0)
        local xs, ws = {}, {}
        for a = 0, mr - 1 do
          xs[a] = {K:iname("x" .. a), K:iname("y" .. a)}
          K:line(fmt("%s %s, %s;", T, xs[a][1], xs[a][2]))
          K:line(fmt("GRADC_LOAD2(%s, %s, &%s);", xs[a][1], xs[a][2], L(plus(i0, a), k0)))
        end
        for b = 0, nr - 1 do
          ws[b] = {K:iname("w" .. b), K:iname("u" .. b)}
          K:line(fmt("%s %s, %s;", T, ws[b][1], ws[b][2]))
          K:line(fmt("GRADC_LOAD2(%s, %s, &%s);", ws[b][1], ws[b][2], R(k0, plus(j0, b))))
        end
        for h = 1, 2 do
          for a = 0, mr - 1 do
            for b = 0, nr - 1 do
              K:line(fmt("%s[%d][0] += %s * %s;", d, a * nr + b, xs[a][h], ws[b][h]))
            end
          end
          for b = 0, S and nr - 1 or -1 do
            K:line(fmt("%s[%d][0] += %s * %s;", sq, b, ws[b][h], ws[b][h]))
          end
        end
      end
      local arrays = L(plus(i0, 0), q):match("%]$") and R(q, plus(j0, 0)):match("%]$")
      if rb then K:loop(rb, mm.nb) end
      if V == 1 and mr == 1 and not K.f64 and mm.k >= 2 and arrays then
        local k2 = mm.k - mm.k % 2
        K:open(fmt("for (int %s = 0; %s < %d; %s += 2)", q, q, k2, q))
        step2(q)
        K:close()
        if k2 < mm.k then step(cfmt.int(k2), 1) end
      elseif kfull == V then
        step("0", V)
      elseif kfull > 0 then
        K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", q, q, kfull, q, V))
        step(q, V)
        K:close()
      end
      if V > 1 and kfull < mm.k then step(cfmt.int(kfull), mm.k - kfull) end
      if rb then K:close() end
      if S then  -- the tile's squares into the total: rows, then lanes by halves
        local ss = K:iname("sqs")
        K:line(fmt("%s %s[%d];", T, ss, V))
        lanes(K, l, V)
        K:line(fmt("%s[%s] = %s[0][%s];", ss, l, sq, l))
        K:close()
        if nr > 1 then
          K:open(fmt("for (int %s = 1; %s < %d; %s++)", t, t, nr, t))
          lanes(K, l, V)
          K:line(fmt("%s[%s] += %s[%s][%s];", ss, l, sq, t, l))
          K:close()
          K:close()
        end
        K:line(fmt("%s += %s;", total, halves(K, ss, l)))
      end
      -- the epilogue of each element of the tile, sum(ti) its row sum
      local ii, jj = K:iname("ii"), K:iname("jj")
      local function epilogue(sum, vec)
        if mr > 1 then K:loop(ii, mr) end
        if nr > 1 then K:loop(jj, nr, vec) end
        local ti = cfmt.sum({mr > 1 and cfmt.term(ii, nr) or nil, nr > 1 and jj or nil}, 2)
        local row = mr > 1 and (type(i0) == "number" and i0 == 0 and ii or
          fmt("(%s + %s)", i0, ii)) or plus(i0, 0)
        local col = nr > 1 and (type(j0) == "number" and j0 == 0 and jj or
          fmt("(%s + %s)", j0, jj)) or plus(j0, 0)
        group_body(K, root, members, c_vars(mm, row, col), p.id, sum(ti))
        if nr > 1 then K:close() end
        if mr > 1 then K:close() end
      end
      -- the lanes of each accumulator summed by halves: several rows per
      -- vector operation where gradc_rt.h can (GRADC_ROWSUM16, the same
      -- tree; the epilogue then runs on vectors of row sums), else in place
      local vec = V == 16 and K.A.real_bytes == 4
      if vec then
        local r = K:iname("r")
        K:directive("#ifdef GRADC_ROWSUM16")
        K:line(fmt("%s %s[%d];", T, r, nt))
        K:line(fmt("gradc_rowsum16_f32(%s, %d, %s);", d, nt, r))
        epilogue(function(ti) return fmt("%s[%s]", r, ti) end, nr >= 4)
        K:directive("#else")
      end
      if V == 1 then  -- scalar tiles: element by element, as tile_loops
        for a = 0, mr - 1 do
          for b = 0, nr - 1 do
            K:open("")
            group_body(K, root, members, c_vars(mm, plus(i0, a), plus(j0, b)), p.id,
              fmt("%s[%d][0]", d, a * nr + b))
            K:close()
          end
        end
        if not inloop then K:close() end
        return
      end
      K:loop(t, nt)
      halves(K, fmt("%s[%s]", d, t), l)
      K:close()
      epilogue(function(ti)
        local val = K:iname("v")
        K:line(fmt("const %s %s = %s;", T, val, last4(K, fmt("%s[%s]", d, ti))))
        return val
      end)
      if vec then K:directive("#endif") end
      if not inloop then K:close() end
    end)
  end)
end

-- Tile form, for R unit-stride along j (C = L R or L^T R: the backward
-- products dY W and dY^T X): a tile of MR rows by G * V columns of C keeps
-- MR * G accumulators of V lanes; each step over k broadcasts MR values of
-- L and loads G vectors of R, MR * G vector FMAs (rank-1 updates,
-- independent lanes; the lane loop is exactly one vector wide, so the C
-- compiler keeps the accumulators in registers).  Columns outside, rows
-- inside, so a panel of R (K by G * V) is reused by every row block.  The
-- epilogue runs on the accumulators, row by row.  MR = 8, G = 2: each
-- value loaded is used from a register by two or eight FMAs, 10 loads for
-- 16 FMAs; with G = 1, GCC folds each broadcast into its FMA (one load an
-- FMA) and with G = 4 the vector loads (measured on Zen 4: 8 x 2 runs at
-- 96% of peak, 16 x 1 at 42%).  Fewer rows: more columns, about 16
-- accumulators.  With Tile.rows (select.c's rows_tile: 16 registers, 6 x
-- 2), each step is written row by row instead, each row's broadcast then
-- its own lane loop over the G vectors of R (GRADC_VECTOR, or GCC
-- unrolls it and vectorizes the k loop through shuffles), so that GCC
-- loads the G vectors first and keeps one broadcast at a time: 12
-- accumulators, 2 vectors and a broadcast in 16 registers (written as
-- the other tiles are, all broadcasts first, GCC spills).
--
-- The loops work on a view v of the product: its sizes v.m, v.n, v.k, the
-- operands v.L(row, q) and v.R(q, col), and v.vars(row, col), the
-- epilogue's index variables of C's element (row, col) of the view.
local function tile_loops(K, root, members, p, v)
  local T, V = K.T, K.block
  local L, R = v.L, v.R
  local MR, G = K.tile.mr, K.tile.nr  -- select.c
  local function tile(j0, nr, i0, mr)
    local g = nr > V and nr // V or 1
    local w = nr > V and V or nr
    local a, l, q, ii, t = K:iname("a"), K:iname("l"), K:iname("k"), K:iname("ii"), K:iname("t")
    K:line(fmt("%s %s[%d][%d];", T, a, mr * g, w))
    K:loop(t, mr * g)
    lanes(K, l, w)
    K:line(fmt("%s[%s][%s] = %s;", a, t, l, K:lit(0)))
    K:close()
    K:close()
    local function col_of(c)
      local col = plus(j0, c * V)
      return (col == "0") and l or fmt("%s + %s", col, l)
    end
    local function body(kq)
      if K.tile.rows then  -- select.c's rows_tile: row by row, each its own lane loop
        for r = 0, mr - 1 do
          local xr = K:iname("x" .. r)
          K:line(fmt("const %s %s = %s;", T, xr, L(plus(i0, r), kq)))
          K:loop(l, w, true)
          for c = 0, g - 1 do
            K:line(fmt("%s[%d][%s] += %s * %s;", a, r * g + c, l, xr, R(kq, col_of(c))))
          end
          K:close()
        end
        return
      end
      for r = 0, mr - 1 do
        K:line(fmt("const %s %s = %s;", T, K:iname("x" .. r), L(plus(i0, r), kq)))
      end
      lanes(K, l, w)
      for c = 0, g - 1 do
        local rv = K:iname(g > 1 and "r" .. c or "r")
        K:line(fmt("const %s %s = %s;", T, rv, R(kq, col_of(c))))
        for r = 0, mr - 1 do
          K:line(fmt("%s[%d][%s] += %s * %s;", a, r * g + c, l, K:iname("x" .. r), rv))
        end
      end
      K:close()
    end
    -- select.c's k2_tile (a scalar FPU): two values of k a step, each
    -- row's pair one load (GRADC_LOAD2), each accumulator's terms in k order
    local function body2(kq)
      for r = 0, mr - 1 do
        local x, y = K:iname("x" .. r), K:iname("y" .. r)
        K:line(fmt("%s %s, %s;", T, x, y))
        K:line(fmt("GRADC_LOAD2(%s, %s, &%s);", x, y, L(plus(i0, r), kq)))
      end
      for h = 0, 1 do
        for c = 0, g - 1 do
          local rv = K:iname((h == 0 and "r" or "s") .. c)
          K:line(fmt("const %s %s = %s;", T, rv, R(h == 0 and kq or fmt("(%s + 1)", kq), plus(j0, c))))
          for r = 0, mr - 1 do
            K:line(fmt("%s[%d][0] += %s * %s;", a, r * g + c, K:iname((h == 0 and "x" or "y") .. r), rv))
          end
        end
      end
    end
    if K.tile.k2 and L(plus(i0, 0), q):match("%]$") then  -- (an element of an array)
      local k2 = v.k - v.k % 2
      K:open(fmt("for (int %s = 0; %s < %d; %s += 2)", q, q, k2, q))
      body2(q)
      K:close()
      if k2 < v.k then body(cfmt.int(k2)) end
    elseif v.k > 1 then
      K:loop(q, v.k)
      body(q)
      K:close()
    else
      body("0")
    end
    -- the epilogue, row by row (column j = c * V + l of the tile);
    -- scalar tiles: element by element, so the accumulators stay in
    -- registers (a loop over them would keep them in memory)
    if V == 1 then
      for r = 0, mr - 1 do
        for c = 0, g - 1 do
          K:open("")
          group_body(K, root, members, v.vars(plus(i0, r), plus(j0, c)), p.id,
            fmt("%s[%d][0]", a, r * g + c))
          K:close()
        end
      end
      return
    end
    if mr > 1 then K:loop(ii, mr) end
    local cv = g > 1 and K:iname("c") or nil
    if cv then K:loop(cv, g) end
    K:loop(l, w, true)
    local row = mr > 1 and (i0 == 0 and ii or fmt("(%s + %s)", i0, ii)) or plus(i0, 0)
    local inner = cv and fmt("%s * %d + %s", cv, V, l) or l
    local col = j0 == 0 and inner or fmt("(%s + %s)", j0, inner)
    local t_ = cfmt.sum({mr > 1 and cfmt.term(ii, g) or nil, cv}, 2)
    group_body(K, root, members, v.vars(row, col), p.id, fmt("%s[%s][%s]", a, t_, l))
    K:close()
    if cv then K:close() end
    if mr > 1 then K:close() end
  end
  blocks(K, "j0", v.n, G * V, function(j0, nr)
    -- a tail wider than V: its whole vectors, then the rest
    local parts = {{j0, nr}}
    if nr > V and nr % V ~= 0 then
      parts = {{j0, nr - nr % V}, {type(j0) == "number" and j0 + nr - nr % V or nil, nr % V}}
    end
    for _, pt in ipairs(parts) do
      blocks(K, "i0", v.m, MR, function(i0, mr, body)
        if not body then K:open("") end
        tile(pt[1], pt[2], i0, mr)
        if not body then K:close() end
      end)
    end
  end)
end

local function tile_product(K, root, members, p)
  local mm = p.mm
  if mm.k == 1 then return outer_product(K, root, members, p) end
  local L, R = operands(K, p)
  local MB = K.tile.mb or 0
  if MB > 0 then  -- C = L^T R by blocks of MB rows, L^T's block copied (select.c)
    blocks(K, "ib", mm.m, MB, function(ib, mb, inloop)
      if not inloop then K:open("") end
      local la, q, r = K:iname("la"), K:iname("kk"), K:iname("l")
      local function row(e) return plus(ib, 0) == "0" and e or fmt("(%s + %s)", ib, e) end
      K:line(fmt("%s %s[%d];", K.T, la, mm.k * mb))
      K:loop(q, mm.k)
      K:loop(r, mb)
      K:line(fmt("%s[%s] = %s;", la, cfmt.sum({cfmt.term(q, mb), r}, 2), L(row(r), q)))
      K:close()
      K:close()
      tile_loops(K, root, members, p, {m = mb, n = mm.n, k = mm.k,
        L = function(rw, kq) return fmt("%s[%s]", la, cfmt.sum({times(kq, mb), times(rw, 1)}, 2)) end,
        R = R,
        vars = function(rw, col)
          local i = row(rw)
          if i:find(" ") and not i:match("^%b()$") then i = "(" .. i .. ")" end
          return c_vars(mm, i, col)
        end})
      if not inloop then K:close() end
    end)
    return
  end
  tile_loops(K, root, members, p, {m = mm.m, n = mm.n, k = mm.k, L = L, R = R,
    vars = function(row, col) return c_vars(mm, row, col) end})
end

-- Transposed form (xt), for C = X W^T with Matmul.pack (optimize.c: 16
-- or more rows): per block of P = pack rows of X, X^T is packed into the
-- kernel's scratch memory, xt[q][i] = X[ib + i][q] (P k elements), and the
-- tile form computes C^T = W X^T over the block: broadcasts of W's rows,
-- unit-stride vectors of xt along the rows of C, so no horizontal sums
-- (the lane form's cost) and no packing of W.  The epilogue writes C[i][j]
-- at stride n.  Packing costs one copy of X; W is read once a block.
-- A stack panel name[k][n] (declared here) that the tiles read through
-- the pointer returned, one index k n + col: so written, GCC 12 keeps the
-- tile's accumulators in registers; indexed name[q][col] or as one
-- dimension it either unrolls the tile's lane loops early and vectorizes
-- its k loop through shuffles (an in-order reduction: 7x OpenBLAS on
-- AVX2), or keeps the accumulators in memory (3x), depending on the
-- function around it.
local function stack_panel(K, name, k, n)
  local ptr = K:iname(name .. "p")
  K:line(fmt("%s %s[%d][%d];", K.T, name, k, n))
  K:line(fmt("const %s *%s = &%s[0][0];", K.T, ptr, name))
  return ptr
end

-- stack: the panel form's variant for few columns (select.c: Tile.mb
-- rows of X per block, X^T's block in a stack array of k P elements).
local function xt_product(K, root, members, p, stack)
  local mm = p.mm
  local L, R = operands(K, p)
  local xt = not stack and K:scratch(p.id)
  local P = (K.tile.mb or 0) > 0 and K.tile.mb or mm.pack
  blocks(K, "ib", mm.m, P, function(ib, pb, inloop)
    if not inloop then K:open("") end
    local xw = nil
    if stack then
      xw = K:iname("xb")
      xt = stack_panel(K, xw, mm.k, pb)
    end
    local q, i = K:iname("k"), K:iname("i")
    K:loop(q, mm.k)
    K:loop(i, pb)
    local src = L(plus(ib, 0) == "0" and i or fmt("(%s + %s)", ib, i), q)
    if xw then
      K:line(fmt("%s[%s][%s] = %s;", xw, q, i, src))
    else
      K:line(fmt("%s[%s] = %s;", xt, cfmt.sum({cfmt.term(q, pb), i}, 2), src))
    end
    K:close()
    K:close()
    tile_loops(K, root, members, p, {m = mm.n, n = pb, k = mm.k,
      L = function(row, kq) return R(kq, row) end,
      R = function(kq, col) return fmt("%s[%s]", xt, cfmt.sum({cfmt.term(kq, pb), col}, 2)) end,
      vars = function(row, col)
        local i = plus(ib, 0) == "0" and col or fmt("%s + %s", ib, col)
        if i:find(" ") and not i:match("^%b()$") then i = "(" .. i .. ")" end
        return c_vars(mm, i, row)
      end})
    if not inloop then K:close() end
  end)
end

-- Packed form, for C = L R^T with enough rows and a short k (the forward
-- product X W^T at a batch of 16 or more, k <= 128, where the lane form's
-- final sums would cost as much as its products): panels of V rows of R are transposed into a
-- stack buffer pk[KC][V], KC values of k at a time, so the tile form's
-- rank-1 updates apply (broadcast L, unit-stride pk); the partial sums of
-- an MB-row block of C live in cp[MB][V] across the KC blocks, and the
-- epilogue runs on cp.  Stack: (KC + MB) V elements, at most 4 KiB
-- (f32: KC, MB <= 32).  A panel narrower than V (the last of N) is padded
-- with zeros.  Packing costs N K copies per MB rows of C.
local function packed_product(K, root, members, p)
  local mm, T, V = p.mm, K.T, K.block
  local L, R = operands(K, p)
  local MB, KC, MR = K.tile.mb, K.tile.kc, K.tile.mr  -- the panel and tile select.c chose
  local pk, cp, l, kk, k0, ib, i, ii, a = K:iname("pk"), K:iname("cp"), K:iname("l"),
    K:iname("kk"), K:iname("k0"), K:iname("ib"), K:iname("i"), K:iname("ii"), K:iname("a")
  local ibv = mm.m > MB and ib or nil
  if ibv then K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", ib, ib, mm.m, ib, MB)) end
  blocks(K, "j0", mm.n, V, function(j0, w, inloop)
    if not inloop then K:open("") end
    K:line(fmt("%s %s[%d][%d];", T, pk, KC, V))
    K:line(fmt("%s %s[%d][%d];", T, cp, MB, V))
    K:loop(i, MB)
    lanes(K, l, V)
    K:line(fmt("%s[%s][%s] = %s;", cp, i, l, K:lit(0)))
    K:close()
    K:close()
    if w < V then  -- padding columns of the last panel
      K:loop(kk, KC)
      K:open(fmt("for (int %s = %d; %s < %d; %s++)", l, w, l, V, l))
      K:line(fmt("%s[%s][%s] = %s;", pk, kk, l, K:lit(0)))
      K:close()
      K:close()
    end
    local kv = mm.k > KC and k0 or nil
    if kv then K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", k0, k0, mm.k, k0, KC)) end
    local kexpr = kv and fmt("%s + %s", k0, kk) or kk
    -- pack: pk[kk][l] = R[j0 + l][k0 + kk], rows of pk inside (GCC
    -- transposes through permutes: 4x fewer instructions than column order)
    K:loop(kk, KC)
    lanes(K, l, w)
    local col = j0 == 0 and l or fmt("(%s + %s)", j0, l)
    K:line(fmt("%s[%s][%s] = %s;", pk, kk, l, R(kexpr, col)))
    K:close()
    K:close()
    -- rank-1 updates of MR rows at a time
    local iv = MB > MR and K:iname("i0") or nil
    if iv then K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", iv, iv, MB, iv, MR)) else K:open("") end
    local function crow(r)
      if not iv then return cfmt.int(r) end
      return r == 0 and iv or fmt("%s + %d", iv, r)
    end
    K:line(fmt("%s %s[%d][%d];", T, a, MR, V))
    lanes(K, l, V)
    for r = 0, MR - 1 do
      K:line(fmt("%s[%d][%s] = %s[%s][%s];", a, r, l, cp, crow(r), l))
    end
    K:close()
    K:loop(kk, KC)
    for r = 0, MR - 1 do
      local row = crow(r)
      if ibv then row = fmt("%s + %s", ib, row) end
      if row:find(" ") then row = "(" .. row .. ")" end
      K:line(fmt("const %s %s = %s;", T, K:iname("x" .. r), L(row, kexpr)))
    end
    lanes(K, l, V)
    local rv = K:iname("r")
    K:line(fmt("const %s %s = %s[%s][%s];", T, rv, pk, kk, l))
    for r = 0, MR - 1 do
      K:line(fmt("%s[%d][%s] += %s * %s;", a, r, l, K:iname("x" .. r), rv))
    end
    K:close()
    K:close()
    lanes(K, l, V)
    for r = 0, MR - 1 do
      K:line(fmt("%s[%s][%s] = %s[%d][%s];", cp, crow(r), l, a, r, l))
    end
    K:close()
    K:close()
    if kv then K:close() end
    -- the epilogue on the block's sums
    K:loop(i, MB)
    lanes(K, l, w)
    local row = ibv and fmt("(%s + %s)", ib, i) or i
    local c = j0 == 0 and l or fmt("(%s + %s)", j0, l)
    group_body(K, root, members, c_vars(mm, row, c), p.id, fmt("%s[%s][%s]", cp, i, l))
    K:close()
    K:close()
    if not inloop then K:close() end
  end)
  if ibv then K:close() end
end

-- Panel form, for C = L R^T with a short k (the forward product X W^T at
-- a batch of 16 or more) on shapes of 16 registers, where the packed
-- form's partial sums do not fit: per panel of NB = NR vectors of
-- columns, R^T is packed whole into a stack buffer pk[K][NB] (K NB
-- elements within the target's stack, select.c), and the tile form runs
-- over all rows of C against it (broadcasts of L, unit-stride pk), its
-- epilogue on the finished sums.  Packing costs one copy of R.
local function panel_product(K, root, members, p)
  local mm, T, V = p.mm, K.T, K.block
  if (K.tile.mb or 0) > 0 then return xt_product(K, root, members, p, true) end
  local L, R = operands(K, p)
  local NB = K.tile.nr * V
  blocks(K, "jp", mm.n, NB, function(j0, nb, inloop)
    if not inloop then K:open("") end
    local pk, q, l = K:iname("pk"), K:iname("kk"), K:iname("l")
    local pr = stack_panel(K, pk, mm.k, nb)
    -- rows of pk inside (GCC transposes through permutes)
    K:loop(q, mm.k)
    K:loop(l, nb)
    K:line(fmt("%s[%s][%s] = %s;", pk, q, l, R(q, j0 == 0 and l or fmt("(%s + %s)", j0, l))))
    K:close()
    K:close()
    tile_loops(K, root, members, p, {m = mm.m, n = nb, k = mm.k, L = L,
      R = function(kq, col) return fmt("%s[%s]", pr, cfmt.sum({times(kq, nb), col}, 2)) end,
      vars = function(row, col)
        local c = j0 == 0 and col or fmt("%s + %s", j0, col)
        if c:find(" ") and not c:match("^%b()$") then c = "(" .. c .. ")" end
        return c_vars(mm, row, c)
      end})
    if not inloop then K:close() end
  end)
end

-- The form of a product: "lane", "tile" or "simple" (see above).  The
-- blocked forms pay once the product has some size; tiny products and
-- the --no-fuse baseline keep the simple loops.
local function matmul_form(K, root, members, p, form)
  if form == "xt" then
    xt_product(K, root, members, p)
  elseif form == "packed" then
    packed_product(K, root, members, p)
  elseif form == "panel" then
    panel_product(K, root, members, p)
  elseif form == "lane" then
    lane_product(K, root, members, p)
  elseif form == "tile" then
    tile_product(K, root, members, p)
  else
    simple_product(K, root, members, p)
  end
end

-- The kernel of each register shape select.c chose a tile for (mm.tiles:
-- one, or portable's three, each under `#if GRADC_KERNELS == N`, the
-- last under #else so that every compiler gets one); K.block and K.tile
-- are the shape's while it is printed.
local function matmul_group(K, root, members, p)
  local mm = p.mm
  local tiles = mm.tiles
  if not tiles or #tiles == 0 then  -- no select pass (hand-made tables, unit tests)
    tiles = {{form = mm.form, v = K.block, mr = mm.mr, nr = 0, mb = mm.mb, kc = mm.kc}}
  end
  local block = K.block
  for i, t in ipairs(tiles) do
    if #tiles > 1 then
      K:directive(i == 1 and fmt("#if GRADC_KERNELS == %d", t.kernels) or
        i < #tiles and fmt("#elif GRADC_KERNELS == %d", t.kernels) or "#else")
    end
    K.block, K.tile = t.v, t
    matmul_form(K, root, members, p, t.form)
  end
  if #tiles > 1 then K:directive("#endif") end
  K.block, K.tile = block, nil
end

M.matmul_group, M.halves = matmul_group, halves

return M
