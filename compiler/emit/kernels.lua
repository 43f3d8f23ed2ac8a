-- kernels.lua: one loop nest per scheduled root node, parallel to ops.def.
--
-- A root is a node that is not fused (Node.fuse == -1) and is no leaf.
-- Its group is the root plus every node fused into it (optimize.c): a tree
-- of elementwise nodes and at most one contraction (F_CONTRACT: a matrix
-- product or a convolution).  M.emit_root emits the group as one loop nest:
--   1. with a product: gemm.lua, in the form select.c chose, the
--      elementwise nodes as the epilogue on the finished sums; with a
--      convolution likewise conv.lua;
--   2. without: group.lua's ew_group, nested loops over the root's index
--      space, the dimensions every operand walks contiguously merged;
--   3. a root that is no elementwise op or update: its kernel below, one
--      per op of ops.def (long reductions sum in independent lanes,
--      lane_sum).
-- Each fused node becomes a `const` local in the loop body, named after the
-- node, so the body reads like the math; operands are array reads at
-- offsets derived from the broadcast strides (cfmt.offset), or literals.
-- What a kernel prints of the nodes it reads comes from its node's operand
-- records (n.operands, emit.c): no kernel here looks another node up.
-- The context K is emitter.lua's (see group.lua's header).

local cfmt = require "cfmt"
local group = require "group"
local gemm = require "gemm"
local conv = require "conv"

local M = {}
for k, v in pairs(group) do M[k] = v end  -- emitter.lua's view: one module
local fmt = string.format
local atom, bcast, ew_group, expr, full = group.atom, group.bcast, group.ew_group,
  group.expr, group.full
local LOOP_NAMES = group.LOOP_NAMES
local halves, matmul_group = gemm.halves, gemm.matmul_group

------------------------------------------------------------------ kernels

-- Kernels of the roots that are neither elementwise nor updates, one per
-- op of ops.def (K_ROW, K_REDUCE, K_OTHER); elementwise ops and updates
-- go through the group emitters above.
local kernel = {}
M.kernel = kernel
for op, f in pairs(conv.kernel) do kernel[op] = f end  -- pools, reshape, concat, slice

-- Loops over the rows of a [.., m] index space; calls body(vars, jvar)
-- where vars(j) gives the index vars for column expression j.
local function rows(K, n, body)
  local dims = full(K, n)
  local m = dims[#dims]
  local nrow = cfmt.numel(dims) // m
  local rv = nrow > 1 and K:iname("r") or nil
  if rv then K:loop(rv, nrow) else K:open("") end
  local function vars(j)
    local v = {}
    if rv then v[1] = {e = rv, n = nrow, w = m} end
    if j then v[#v + 1] = {e = j, n = m, w = 1} end
    return v
  end
  body(vars, m)
  K:close()
end

-- x[..] of input k of n at the element given by vars.
local function at(K, n, k, vars)
  return K:read(n.operands[k].id, cfmt.offset(vars, full(K, n), bcast(K, n, k)))
end

-- mx = max over the row of input k (numerically stable softmax).
local function row_max(K, n, k, vars, m, mx, j)
  K:line(fmt("%s %s = %s;", K.T, mx, at(K, n, k, vars(nil))))
  if m > 1 then
    K:open(fmt("for (int %s = 1; %s < %d; %s++)", j, j, m, j))
    local x = at(K, n, k, vars(j))
    K:open(fmt("if (%s > %s)", x, mx))
    K:line(fmt("%s = %s;", mx, x))
    K:close()
    K:close()
  end
end

kernel.softmax = function(K, n)
  rows(K, n, function(vars, m)
    local j, mx, sum = K:iname("j"), K:iname("mx"), K:iname("sum")
    row_max(K, n, 1, vars, m, mx, j)
    local y = K:read(n.id, cfmt.linear(vars(j)))
    -- the exps in a loop of their own, which vectorizes (GRADC_EXPF has
    -- no branch where GCC vectorizes); the sum in order after it
    K:loop(j, m, true)
    K:line(fmt("%s = %s;", y, K:math("EXP", at(K, n, 1, vars(j)) .. " - " .. mx)))
    K:close()
    K:line(fmt("%s %s = %s;", K.T, sum, K:lit(0)))
    K:loop(j, m)
    K:line(fmt("%s += %s;", sum, y))
    K:close()
    K:loop(j, m)
    K:line(fmt("%s /= %s;", y, sum))
    K:close()
  end)
end

kernel.log_softmax = function(K, n)
  rows(K, n, function(vars, m)
    local j, mx, sum, ls = K:iname("j"), K:iname("mx"), K:iname("sum"), K:iname("lse")
    row_max(K, n, 1, vars, m, mx, j)
    K:line(fmt("%s %s = %s;", K.T, sum, K:lit(0)))
    K:loop(j, m)
    K:line(fmt("%s += %s;", sum, K:math("EXP", at(K, n, 1, vars(j)) .. " - " .. mx)))
    K:close()
    K:line(fmt("const %s %s = %s;", K.T, ls, K:math("LOG", sum)))
    K:loop(j, m)
    K:line(fmt("%s = %s - %s - %s;", K:read(n.id, cfmt.linear(vars(j))),
      at(K, n, 1, vars(j)), mx, ls))
    K:close()
  end)
end

-- dx = y * (dy - sum(dy * y)) per row; the row's sum before any write, so
-- dx may overwrite dy or y (plan.c's in-place rule).
kernel.softmax_grad = function(K, n)
  rows(K, n, function(vars, m)
    local j, sum = K:iname("j"), K:iname("sum")
    K:line(fmt("%s %s = %s;", K.T, sum, K:lit(0)))
    K:loop(j, m)
    K:line(fmt("%s += %s * %s;", sum, at(K, n, 1, vars(j)), at(K, n, 2, vars(j))))
    K:close()
    K:loop(j, m)
    K:line(fmt("%s = %s * (%s - %s);", K:read(n.id, cfmt.linear(vars(j))),
      at(K, n, 2, vars(j)), at(K, n, 1, vars(j)), sum))
    K:close()
  end)
end

-- dx = dy - exp(y) * sum(dy) per row (y = log_softmax output).
kernel.log_softmax_grad = function(K, n)
  rows(K, n, function(vars, m)
    local j, sum = K:iname("j"), K:iname("sum")
    K:line(fmt("%s %s = %s;", K.T, sum, K:lit(0)))
    K:loop(j, m)
    K:line(fmt("%s += %s;", sum, at(K, n, 1, vars(j))))
    K:close()
    K:loop(j, m)
    K:line(fmt("%s = %s - %s * %s;", K:read(n.id, cfmt.linear(vars(j))),
      at(K, n, 1, vars(j)), K:math("EXP", at(K, n, 2, vars(j))), sum))
    K:close()
  end)
end

-- Statements summing term(j) over j in [0, m) in g groups of V
-- independent lanes (lane l of group c sums j = c V + l mod g V, so the
-- loop, exactly one vector wide, vectorizes without reassociation and
-- keeps g sums in flight), then the groups and the lanes by halves in a
-- second array (summed in place, GCC keeps the accumulators in memory);
-- returns the sum's C text.
local function lane_sum(K, m, g, term)
  local T, V = K.T, K.block
  local acc, s, l, j0, c = K:iname("lane"), K:iname("sum"), K:iname("l"), K:iname("j0"), K:iname("c")
  local width = g * V
  K:line(fmt("%s %s[%d][%d];", T, acc, g, V))
  K:loop(c, g)
  K:loop(l, V)
  K:line(fmt("%s[%s][%s] = %s;", acc, c, l, K:lit(0)))
  K:close()
  K:close()
  local full = m - m % width
  -- n groups of V from 'base' (C text or nil for 0)
  local function step(base, n)
    if n > 1 then K:loop(c, n) else K:open("") end
    local t = {base, n > 1 and cfmt.term(c, V) or nil, l}
    K:loop(l, V)
    K:line(fmt("%s[%s][%s] += %s;", acc, n > 1 and c or "0", l, term(cfmt.sum(t, 3))))
    K:close()
    K:close()
  end
  if full > width then
    K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", j0, j0, full, j0, width))
    step(j0, g)
    K:close()
  elseif full > 0 then
    step(nil, g)
  end
  -- the tail: whole vectors, then lanes
  local rest = m - full
  if rest >= V then step(cfmt.int(full), rest // V) end
  if rest % V > 0 then
    K:loop(l, rest % V)
    K:line(fmt("%s[0][%s] += %s;", acc, l, term(fmt("%d + %s", m - rest % V, l))))
    K:close()
  end
  K:line(fmt("%s %s[%d];", T, s, V))
  K:loop(l, V)
  local t = {}
  for k = 0, g - 1 do t[#t + 1] = fmt("%s[%d][%s]", acc, k, l) end
  while #t > 1 do
    local u = {}
    for k = 1, #t, 2 do u[#u + 1] = t[k + 1] and fmt("(%s + %s)", t[k], t[k + 1]) or t[k] end
    t = u
  end
  K:line(fmt("%s[%s] = %s;", s, l, g > 1 and t[1]:sub(2, -2) or t[1]))
  K:close()
  return halves(K, s, l)
end

-- Per-sample reductions to a scalar: sum, mean, sumsq.  Long ones sum in
-- n.groups groups of V independent lanes (lane_sum; kernel.c's
-- reduce_groups: 1 from 2 V elements, 4 past 8 V), so several vector
-- additions are in flight.
local function reduction(K, n)
  if K.sq[n.id] then  -- summed by the product reading the same weights (lane_product)
    K:line(fmt("%s[0] = %s;", K:ptr(n.id), K.sq[n.id]))
    return
  end
  local x = n.operands[1]
  local m = cfmt.numel(x.shape)
  local nrow = cfmt.numel(full(K, n))
  local b, e, acc = K:iname("b"), K:iname("j"), K:iname("acc")
  if nrow > 1 then K:loop(b, nrow) else K:open("") end
  local base = nrow > 1 and cfmt.term(b, m) or nil
  local function term(j)
    local v = K:read(x.id, cfmt.sum({base, j}, 2))
    if n.op == "sumsq" then return v .. " * " .. v end
    return v
  end
  local sum
  if n.groups > 0 then  -- kernel.c's reduce_groups
    sum = lane_sum(K, m, n.groups, term)
  else
    K:line(fmt("%s %s = %s;", K.T, acc, K:lit(0)))
    if m > 1 then K:loop(e, m) end
    K:line(fmt("%s += %s;", acc, term(m > 1 and e or nil)))
    if m > 1 then K:close() end
    sum = acc
  end
  local res = sum
  if n.op == "mean" then
    res = fmt(sum == acc and "%s / %s" or "(%s) / %s", sum, K:lit(m))
  end
  K:line(fmt("%s[%s] = %s;", K:ptr(n.id), nrow > 1 and b or "0", res))
  K:close()
end
kernel.sum = reduction
kernel.mean = reduction
kernel.sumsq = reduction

-- The mean over the batch, element by element of the per-sample shape.
kernel.batch_mean = function(K, n)
  local x = n.operands[1]
  local m = cfmt.numel(n.shape)
  local nb = x.batched and K.batch or 1
  local e, b, acc = K:iname("j"), K:iname("b"), K:iname("acc")
  if m > 1 then K:loop(e, m) else K:open("") end
  K:line(fmt("%s %s = %s;", K.T, acc, K:lit(0)))
  local off = cfmt.sum({nb > 1 and cfmt.term(b, m) or nil, m > 1 and e or nil}, 2)
  if nb > 1 then K:loop(b, nb) end
  K:line(fmt("%s += %s;", acc, K:read(x.id, off)))
  if nb > 1 then K:close() end
  K:line(fmt("%s[%s] = %s / %s;", K:ptr(n.id), m > 1 and e or "0", acc, K:lit(nb)))
  K:close()
end

-- Sum the input down to this node's shape: zero, then accumulate over the
-- input's index space in order (eval.c's order, so results match it).
kernel.reduce_to = function(K, n)
  local x = n.operands[1]
  local xd = x.full
  local out = cfmt.numel(full(K, n))
  local y = K:ptr(n.id)
  local z = K:iname("i")
  if out > 1 then
    K:loop(z, out)
    K:line(fmt("%s[%s] = %s;", y, z, K:lit(0)))
    K:close()
  else
    K:line(fmt("%s[0] = %s;", y, K:lit(0)))
  end
  local D = n.loops  -- kernel.c's reduce_loops: contiguous dimensions merged
  local P = cfmt.contiguous(D)
  local vars = {}
  for k = 1, #D do
    vars[k] = {e = K:iname(LOOP_NAMES[k]), n = D[k], w = P[k]}
    K:loop(vars[k].e, D[k])
  end
  if #D == 0 then K:open("") end
  K:line(fmt("%s[%s] += %s;", y, cfmt.offset(vars, xd, x.into),
    K:read(x.id, cfmt.linear(vars))))
  for _ = 1, math.max(#D, 1) do K:close() end
end

-- Per-sample 2-D transpose.
kernel.transpose = function(K, n)
  local x = n.operands[1]
  local a, c = x.shape[1], x.shape[2]
  local nb = n.batched and K.batch or 1
  local b, i, j = K:iname("b"), K:iname("i"), K:iname("j")
  if nb > 1 then K:loop(b, nb) else K:open("") end
  K:loop(i, a)
  K:loop(j, c)
  local base = nb > 1 and cfmt.term(b, a * c) or nil
  K:line(fmt("%s[%s] = %s;", K:ptr(n.id),
    cfmt.sum({base, cfmt.term(j, a), cfmt.term(i, 1)}, 3),
    K:read(x.id, cfmt.sum({x.batched and base or nil, cfmt.term(i, c), cfmt.term(j, 1)}, 3))))
  K:close()
  K:close()
  K:close()
end

-- Loops over the samples of a per-sample loss: body(b or nil, label expr);
-- 'lab' the label's operand record.
local function per_sample(K, n, lab, body)
  local nb = n.batched and K.batch or 1
  local b = nb > 1 and K:iname("b") or nil
  if b then K:loop(b, nb) else K:open("") end
  local c = K:iname("c")
  K:line(fmt("const int32_t %s = %s;", c, K:read(lab.id, lab.batched and b or "0")))
  body(b, c)
  K:close()
end

-- L = logsumexp(x) - x[y], stable (the row max subtracted).  With
-- n.clobber (optimize.c, step 5) the loss leaves e_j = exp(x_j - max) in
-- x's buffer and its gradient needs no exp (PyTorch keeps the softmax
-- likewise).
kernel.cross_entropy = function(K, n)
  local x, lab = n.operands[1], n.operands[2]
  local lo = x.id
  local m = x.shape[1]
  local share = n.clobber == 1
  per_sample(K, n, lab, function(b, c)
    local base = x.batched and b and cfmt.term(b, m) or nil
    local function xr(jj) return K:read(lo, cfmt.sum({base, jj}, 2)) end
    local j, mx, sum, xc = K:iname("j"), K:iname("mx"), K:iname("sum"), K:iname("xc")
    K:line(fmt("%s %s = %s;", K.T, mx, xr(nil)))
    if m > 1 then
      K:open(fmt("for (int %s = 1; %s < %d; %s++)", j, j, m, j))
      K:open(fmt("if (%s > %s)", xr(j), mx))
      K:line(fmt("%s = %s;", mx, xr(j)))
      K:close()
      K:close()
    end
    if share then K:line(fmt("const %s %s = %s;", K.T, xc, xr(c))) end
    local e = K:math("EXP", xr(j) .. " - " .. mx)
    if share then  -- the exps in a loop of their own (vectorizes), as softmax
      K:loop(j, m, true)
      K:line(fmt("%s = %s;", xr(j), e))
      K:close()
    end
    K:line(fmt("%s %s = %s;", K.T, sum, K:lit(0)))
    K:loop(j, m)
    K:line(fmt("%s += %s;", sum, share and xr(j) or e))
    K:close()
    K:line(fmt("%s[%s] = %s + %s - %s;", K:ptr(n.id), b or "0", mx, K:math("LOG", sum),
      share and xc or xr(c)))
  end)
end

-- dlogits = dL (softmax(x) - onehot(y)).  softmax(x)_j = exp(x_j - lse),
-- with the row's logsumexp lse = L + x[y] taken from the forward loss L
-- (one exp a logit), or e_j / sum(e) when the loss left e_j = exp(x_j -
-- max) in x's buffer (no exp; the sum before any write, so the gradient
-- may overwrite x).
kernel.cross_entropy_grad = function(K, n)
  local x, lab, loss = n.operands[2], n.operands[3], n.operands[4]
  local lo = x.id
  local m = x.shape[1]
  local shared = loss.clobber == 1
  per_sample(K, n, lab, function(b, c)
    local base = x.batched and b and cfmt.term(b, m) or nil
    local function xr(jj) return K:read(lo, cfmt.sum({base, jj}, 2)) end
    local j, lse, sum = K:iname("j"), K:iname("lse"), K:iname("sum")
    local p
    if shared then
      K:line(fmt("%s %s = %s;", K.T, sum, K:lit(0)))
      K:loop(j, m)
      K:line(fmt("%s += %s;", sum, xr(j)))
      K:close()
      p = fmt("%s / %s", xr(j), sum)
    else
      K:line(fmt("const %s %s = %s + %s;", K.T, lse, K:read(loss.id, loss.batched and b or "0"),
        xr(c)))
      p = K:math("EXP", xr(j) .. " - " .. lse)
    end
    local vars = {}
    if b then vars[1] = {e = b, n = K.batch, w = m} end
    vars[#vars + 1] = {e = j, n = m, w = 1}
    local dl = n.operands[1]
    local dlv = dl.lit and atom(K:lit(dl.lit)) or at(K, n, 1, vars)
    K:loop(j, m, true)
    K:line(fmt("%s[%s] = %s * (%s - (%s)(%s == %s));", K:ptr(n.id), cfmt.linear(vars),
      dlv, p, K.T, j, c))
    K:close()
  end)
end

-- E = mean((a - b)^2) per sample.
kernel.mse = function(K, n)
  local a, bn = n.operands[1], n.operands[2]
  local m = cfmt.numel(a.shape)
  local nb = n.batched and K.batch or 1
  local s, e, acc, d = K:iname("b"), K:iname("j"), K:iname("acc"), K:iname("d")
  if nb > 1 then K:loop(s, nb) else K:open("") end
  K:line(fmt("%s %s = %s;", K.T, acc, K:lit(0)))
  if m > 1 then K:loop(e, m) end
  local function x(node)
    local base = node.batched and nb > 1 and cfmt.term(s, m) or nil
    return K:read(node.id, cfmt.sum({base, m > 1 and e or nil}, 2))
  end
  K:line(fmt("const %s %s = %s - %s;", K.T, d, x(a), x(bn)))
  K:line(fmt("%s += %s * %s;", acc, d, d))
  if m > 1 then K:close() end
  K:line(fmt("%s[%s] = %s / %s;", K:ptr(n.id), nb > 1 and s or "0", acc, K:lit(m)))
  K:close()
end

------------------------------------------------------------------ dispatch

-- Emit the loop nest of root node 'root' whose fused nodes are 'members'
-- (ascending ids), preceded by its comment.
function M.emit_root(K, root, members)
  M.comment(K, root, members)
  local p = root.contract and root or nil
  for _, m in ipairs(members) do
    if m.contract then p = m end
  end
  if p and p.op == "matmul" then
    matmul_group(K, root, members, p)
  elseif p then
    conv.conv_group(K, root, members, p)
  elseif root.ew or root.update then
    ew_group(K, root, members)
  elseif kernel[root.op] and #members == 0 then
    kernel[root.op](K, root)
  else
    error(fmt("kernels.lua: no kernel for %s#%d with %d fused nodes", root.op, root.id,
      #members), 0)
  end
end

return M
