-- kernels.lua: one loop nest per scheduled root node, parallel to ops.def.
--
-- A root is a node that is not fused (Node.fuse == -1) and is no leaf.
-- Its group is the root plus every node fused into it (optimize.c): a tree
-- of elementwise nodes and at most one matrix product.  The group is
-- emitted as one loop nest:
--   1. with a product: the product's loops (dot form when the right operand
--      is stored transposed, else a register-blocked axpy form with a row
--      of accumulators); the elementwise nodes run as the epilogue on the
--      accumulator;
--   2. without: nested loops over the root's index space, with the
--      dimensions that every operand walks contiguously merged into one;
--   3. a root that is no elementwise op or update: its kernel below.
-- Each fused node becomes a `const` local in the loop body, named after the
-- node, so the body reads like the math; operands are array reads at
-- offsets derived from the broadcast strides (cfmt.offset), or literals.
--
-- The context K (emitter.lua) gives: K.T (element type), K:lit(v),
-- K:math(F, x), K:node(id), K:name(id), K:ptr(id), K:read(id, off),
-- K:iname(base), K:line(s), K:open(s), K:close(), K:loop(v, n), K.batch,
-- K.opt (optimizer), K:state(prefix, param id), K.upd (update locals).
--
-- Limits: no cache blocking yet (issue 8); the dot form accumulates in one
-- register, which the C compiler cannot vectorize without reassociation.

local cfmt = require "cfmt"

local M = {}
local fmt, unpack = string.format, table.unpack

------------------------------------------------------------------ op sets

local EW = {}
for w in ([[add sub mul div neg scale relu leaky_relu sigmoid tanh exp log
  sqrt abs relu_grad leaky_relu_grad sigmoid_grad tanh_grad sqrt_grad
  abs_grad expand mse_grad]]):gmatch("%S+") do EW[w] = true end
M.EW = EW

local UPDATE = {sgd_step = true, adam_step = true}
M.UPDATE = UPDATE

local function is_literal(n)
  return n.op == "const" or n.op == "fill"
end
M.is_literal = is_literal

-- An operand that starts with '-' in parentheses, so "a - -1" cannot
-- become "a--1".
local function atom(s)
  if s:sub(1, 1) == "-" then return "(" .. s .. ")" end
  return s
end

local function full(K, n)
  return cfmt.full(n, K.batch)
end
M.full = full

-- Strides of input k of node n over n's full index space.
local function bcast(K, n, k)
  if n.bcast and n.bcast[k] then return n.bcast[k] end
  return cfmt.bcast(n, K:node(n.inputs[k]))
end

------------------------------------------------------------------ formulas

-- The value of elementwise node n at one element, from its operands
-- (atoms).  Orders of operations follow eval.c, the reference.
local F = {}
M.formula = F

F.add = function(K, n, a, b) return a .. " + " .. b end
F.sub = function(K, n, a, b) return a .. " - " .. b end
F.mul = function(K, n, a, b) return a .. " * " .. b end
F.div = function(K, n, a, b) return a .. " / " .. b end
F.neg = function(K, n, a) return "-" .. a end
F.scale = function(K, n, a) return atom(K:lit(n.attr[1])) .. " * " .. a end
F.relu = function(K, n, a)
  return fmt("%s < 0 ? %s : %s", a, K:lit(0), a)  -- NaN stays NaN, as in PyTorch
end
F.leaky_relu = function(K, n, a)
  return fmt("%s < 0 ? %s * %s : %s", a, atom(K:lit(n.attr[1])), a, a)
end
F.sigmoid = function(K, n, a)
  return fmt("%s / (%s + %s)", K:lit(1), K:lit(1), K:math("EXP", "-" .. a))
end
F.tanh = function(K, n, a) return K:math("TANH", a) end
F.exp = function(K, n, a) return K:math("EXP", a) end
F.log = function(K, n, a) return K:math("LOG", a) end
F.sqrt = function(K, n, a) return K:math("SQRT", a) end
F.abs = function(K, n, a) return fmt("%s < 0 ? -%s : %s", a, a, a) end
F.expand = function(K, n, a) return a end
-- backward rules: (dy, saved)
F.relu_grad = function(K, n, dy, y)
  return fmt("%s > 0 ? %s : %s", y, dy, K:lit(0))
end
F.leaky_relu_grad = function(K, n, dy, x)
  return fmt("%s > 0 ? %s : %s * %s", x, dy, atom(K:lit(n.attr[1])), dy)
end
F.sigmoid_grad = function(K, n, dy, y)
  return fmt("%s * %s * (%s - %s)", dy, y, K:lit(1), y)
end
F.tanh_grad = function(K, n, dy, y)
  return fmt("%s * (%s - %s * %s)", dy, K:lit(1), y, y)
end
F.sqrt_grad = function(K, n, dy, y)
  return fmt("%s / (%s * %s)", dy, K:lit(2), y)
end
F.abs_grad = function(K, n, dy, x)
  return fmt("%s > 0 ? %s : %s < 0 ? -%s : %s", x, dy, x, dy, K:lit(0))
end
F.mse_grad = function(K, n, dl, a, b)
  return fmt("%s * %s * (%s - %s) / %s", dl, K:lit(2), a, b,
    K:lit(cfmt.numel(n.shape)))
end

------------------------------------------------------------------ comments

-- How node 'id' is shown in comments: its name, a literal's value, or
-- "op#id".
local function label(K, id)
  local n = K:node(id)
  if is_literal(n) then return fmt("%g", n.attr[1]) end
  return n.name or (n.op .. "#" .. id)
end
M.label = label

local SYM = {add = "+", sub = "-", mul = "*", div = "/"}

-- The node's computation as an expression of its inputs' labels.
local function expr(K, n)
  local a = {}
  for k, id in ipairs(n.inputs) do a[k] = label(K, id) end
  if SYM[n.op] then return a[1] .. " " .. SYM[n.op] .. " " .. a[2] end
  if n.op == "matmul" then
    local mm = n.mm
    local s = a[1] .. (mm.ta and "^T" or "") .. " @ " .. a[2] .. (mm.tb and "^T" or "")
    if mm.nb > 1 then
      s = s .. (mm.acc and fmt(", summed over %d", mm.nb) or fmt(", %d times", mm.nb))
    end
    return s
  end
  if n.op == "neg" then return "-" .. a[1] end
  if n.op == "scale" then return fmt("%g * %s", n.attr[1], a[1]) end
  if n.op == "leaky_relu" or n.op == "leaky_relu_grad" then
    a[#a + 1] = fmt("%g", n.attr[1])
  end
  return n.op .. "(" .. table.concat(a, ", ") .. ")"
end
M.expr = expr

local function full_shape(K, n)
  local t = {}
  if n.batched then t[1] = "B" end
  for _, d in ipairs(n.shape) do t[#t + 1] = cfmt.int(d) end
  return "[" .. table.concat(t, ",") .. "]"
end

-- "[B,64] x [32,64] -> [B,32]": the non-literal inputs, then the result.
local function shapes(K, n)
  local t = {}
  for _, id in ipairs(n.inputs) do
    local x = K:node(id)
    if not is_literal(x) and x.type ~= "int" then t[#t + 1] = full_shape(K, x) end
  end
  local s = table.concat(t, " x ")
  if UPDATE[n.op] then return s end
  return (s ~= "" and s .. " -> " or "") .. full_shape(K, n)
end

local function source_text(n)
  if not n.text then return nil end
  local s = n.text:gsub("%s*#.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
  return s ~= "" and s or nil
end

-- Comment lines for one node of a kernel.
local function describe(K, n, prefix)
  local out = {}
  local where = n.line > 0 and fmt("%s:%d", K.file, n.line) or nil
  local src = source_text(n)
  local head = fmt("%s%s = %s   %s", prefix, label(K, n.id), expr(K, n), shapes(K, n))
  if UPDATE[n.op] then head = fmt("%s%s   %s", prefix, n.deriv or expr(K, n), shapes(K, n)) end
  if where and not n.backward and src then
    head = head .. fmt("   (%s: %s)", where, src)
  elseif where then
    head = head .. fmt("   (%s)", where)
  end
  out[1] = head
  if n.backward and n.deriv and not UPDATE[n.op] then
    out[2] = "  " .. prefix .. n.deriv
  end
  return out
end

-- The comment before a kernel: every node of the group, fused ones first.
function M.comment(K, root, members)
  local lines = {}
  for _, m in ipairs(members) do
    for _, l in ipairs(describe(K, m, "")) do lines[#lines + 1] = l end
    lines[#lines] = lines[#lines] .. "   [fused]"
  end
  for _, l in ipairs(describe(K, root, "")) do lines[#lines + 1] = l end
  if #lines == 1 then
    K:line("/* " .. cfmt.comment(lines[1]) .. " */")
    return
  end
  K:line("/* " .. cfmt.comment(lines[1]))
  for i = 2, #lines do K:line(" * " .. cfmt.comment(lines[i])) end
  K:line(" */")
end

------------------------------------------------------------------ groups

-- Statements computing the group at one element: each fused node as a
-- local, then the root's store (or update).  'vars' index the root's
-- elements; the product 'mmid', if any, has the value 'mmval'.
local function group_body(K, root, members, vars, mmid, mmval)
  local val = {}
  if mmid then val[mmid] = mmval end
  local function operand(n, k)
    local id = n.inputs[k]
    if val[id] then return val[id] end
    local x = K:node(id)
    if is_literal(x) then return atom(K:lit(x.attr[1])) end
    return K:read(id, cfmt.offset(vars, full(K, n), bcast(K, n, k)))
  end
  local function args(n)
    local t = {}
    for k = 1, #n.inputs do t[k] = operand(n, k) end
    return unpack(t)
  end
  for _, m in ipairs(members) do
    if m.id ~= mmid then
      local name = K:name(m.id)
      K:line(fmt("const %s %s = %s;", K.T, name, F[m.op](K, m, args(m))))
      val[m.id] = name
    end
  end
  if UPDATE[root.op] then
    M.update(K, root, vars, operand(root, 2))
    return
  end
  local at = fmt("%s[%s]", K:ptr(root.id), cfmt.linear(vars))
  if root.id == mmid then
    K:line(fmt("%s = %s;", at, mmval))
  else
    K:line(fmt("%s = %s;", at, F[root.op](K, root, args(root))))
  end
end

-- Optimizer step on one element of parameter W (PyTorch semantics, the
-- optimizer's weight_decay added to the gradient, as eval.c).
function M.update(K, u, vars, grad)
  local o, T = K.opt, K.T
  local pid = u.inputs[1]
  local idx = cfmt.linear(vars)
  local w = fmt("%s[%s]", K:ptr(pid), idx)
  local g = K:iname("g")
  local rhs = grad
  if o.weight_decay ~= 0 then
    rhs = fmt("%s + %s * %s", grad, atom(K:lit(o.weight_decay)), w)
  end
  K:line(fmt("const %s %s = %s;", T, g, rhs))
  if u.op == "sgd_step" then
    if o.momentum ~= 0 then
      local m = fmt("%s[%s]", K:state("mom", pid), idx)
      K:line(fmt("%s = %s * %s + %s;", m, K:lit(o.momentum), m, g))
      K:line(fmt("%s -= %s * %s;", w, K.upd.lr, m))
    else
      K:line(fmt("%s -= %s * %s;", w, K.upd.lr, g))
    end
    return
  end
  local m = fmt("%s[%s]", K:state("m", pid), idx)
  local v = fmt("%s[%s]", K:state("v", pid), idx)
  K:line(fmt("%s += %s * (%s - %s);", m, K:lit(1 - o.beta1), g, m))
  K:line(fmt("%s = %s * %s + %s * %s * %s;", v, K:lit(o.beta2), v, K:lit(1 - o.beta2), g, g))
  K:line(fmt("%s -= %s * %s / (%s / %s + %s);", w, K.upd.step, m, K:math("SQRT", v),
    K.upd.bc2s, K:lit(o.eps)))
end

local LOOP_NAMES = {"i", "j", "k", "l", "i4", "i5"}

-- An elementwise group without a product (or an update): loops over the
-- root's index space, contiguous dimensions merged.
local function ew_group(K, root, members)
  local dims = full(K, root)
  local lists = {cfmt.contiguous(dims)}
  local inside = {}
  for _, m in ipairs(members) do inside[m.id] = true end
  local function collect(n)
    for k, id in ipairs(n.inputs) do
      if not inside[id] and not is_literal(K:node(id)) then
        lists[#lists + 1] = bcast(K, n, k)
      end
    end
  end
  for _, m in ipairs(members) do collect(m) end
  collect(root)
  local D = cfmt.merge_dims(dims, lists)
  local P = cfmt.contiguous(D)
  local vars = {}
  if #D == 0 then K:open("") end
  for k = 1, #D do
    local v = K:iname(LOOP_NAMES[k])
    vars[k] = {e = v, n = D[k], w = P[k]}
    K:loop(v, D[k])
  end
  group_body(K, root, members, vars)
  for _ = 1, math.max(#D, 1) do K:close() end
end

-- A group around a matrix product C = op(L) op(R) (Node.mm), nb times.
local function matmul_group(K, root, members, p)
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
      K:loop(jj, width)
      K:line(fmt("%s[%s] = %s;", acc, jj, K:lit(0)))
      K:close()
      reduce(function(q)
        K:line(fmt("const %s %s = %s;", T, l, L(q)))
        K:loop(jj, width)
        K:line(fmt("%s[%s] += %s * %s;", acc, jj, l, R(q, jexpr)))
        K:close()
      end)
      K:loop(jj, width)
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

------------------------------------------------------------------ kernels

-- Kernels of the roots that are neither elementwise nor updates, one per
-- op of ops.def (K_ROW, K_REDUCE, K_OTHER); elementwise ops and updates
-- go through the group emitters above.
local kernel = {}
M.kernel = kernel

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
  local id = n.inputs[k]
  return K:read(id, cfmt.offset(vars, full(K, n), bcast(K, n, k)))
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
    K:line(fmt("%s %s = %s;", K.T, sum, K:lit(0)))
    K:loop(j, m)
    K:line(fmt("%s = %s;", y, K:math("EXP", at(K, n, 1, vars(j)) .. " - " .. mx)))
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

-- Per-sample reductions to a scalar: sum, mean, sumsq.
local function reduction(K, n)
  local x = K:node(n.inputs[1])
  local m = cfmt.numel(x.shape)
  local nrow = cfmt.numel(full(K, n))
  local b, e, acc = K:iname("b"), K:iname("j"), K:iname("acc")
  if nrow > 1 then K:loop(b, nrow) else K:open("") end
  K:line(fmt("%s %s = %s;", K.T, acc, K:lit(0)))
  local off = cfmt.sum({nrow > 1 and cfmt.term(b, m) or nil, m > 1 and e or nil}, 2)
  local v = K:read(x.id, off)
  if m > 1 then K:loop(e, m) end
  if n.op == "sumsq" then
    K:line(fmt("%s += %s * %s;", acc, v, v))
  else
    K:line(fmt("%s += %s;", acc, v))
  end
  if m > 1 then K:close() end
  local res = n.op == "mean" and fmt("%s / %s", acc, K:lit(m)) or acc
  K:line(fmt("%s[%s] = %s;", K:ptr(n.id), nrow > 1 and b or "0", res))
  K:close()
end
kernel.sum = reduction
kernel.mean = reduction
kernel.sumsq = reduction

-- The mean over the batch, element by element of the per-sample shape.
kernel.batch_mean = function(K, n)
  local x = K:node(n.inputs[1])
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
  local x = K:node(n.inputs[1])
  local xd = full(K, x)
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
  local D = cfmt.merge_dims(xd, {cfmt.contiguous(xd), cfmt.bcast(x, n)})
  local P = cfmt.contiguous(D)
  local vars = {}
  for k = 1, #D do
    vars[k] = {e = K:iname(LOOP_NAMES[k]), n = D[k], w = P[k]}
    K:loop(vars[k].e, D[k])
  end
  if #D == 0 then K:open("") end
  K:line(fmt("%s[%s] += %s;", y, cfmt.offset(vars, xd, cfmt.bcast(x, n)),
    K:read(x.id, cfmt.linear(vars))))
  for _ = 1, math.max(#D, 1) do K:close() end
end

-- Per-sample 2-D transpose.
kernel.transpose = function(K, n)
  local x = K:node(n.inputs[1])
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

-- Loops over the samples of a per-sample loss: body(b or nil, label expr).
local function per_sample(K, n, lab, body)
  local nb = n.batched and K.batch or 1
  local b = nb > 1 and K:iname("b") or nil
  if b then K:loop(b, nb) else K:open("") end
  local yl = K:node(lab)
  local c = K:iname("c")
  K:line(fmt("const int32_t %s = %s;", c, K:read(lab, yl.batched and b or "0")))
  body(b, c)
  K:close()
end

-- mx and sum(exp(x - mx)) over the logits row at 'base'.
local function logsumexp_parts(K, lo, base, m)
  local j, mx, sum = K:iname("j"), K:iname("mx"), K:iname("sum")
  local function x(jj) return K:read(lo, cfmt.sum({base, jj}, 2)) end
  K:line(fmt("%s %s = %s;", K.T, mx, x(nil)))
  if m > 1 then
    K:open(fmt("for (int %s = 1; %s < %d; %s++)", j, j, m, j))
    K:open(fmt("if (%s > %s)", x(j), mx))
    K:line(fmt("%s = %s;", mx, x(j)))
    K:close()
    K:close()
  end
  K:line(fmt("%s %s = %s;", K.T, sum, K:lit(0)))
  K:loop(j, m)
  K:line(fmt("%s += %s;", sum, K:math("EXP", x(j) .. " - " .. mx)))
  K:close()
  return x, j, mx, sum
end

-- L = logsumexp(x) - x[y], stable (the row max subtracted).
kernel.cross_entropy = function(K, n)
  local lo, lab = n.inputs[1], n.inputs[2]
  local x = K:node(lo)
  local m = x.shape[1]
  per_sample(K, n, lab, function(b, c)
    local base = x.batched and b and cfmt.term(b, m) or nil
    local xr, _, mx, sum = logsumexp_parts(K, lo, base, m)
    K:line(fmt("%s[%s] = %s + %s - %s;", K:ptr(n.id), b or "0", mx, K:math("LOG", sum),
      xr(c)))
  end)
end

-- dlogits = dL (softmax(x) - onehot(y)).
kernel.cross_entropy_grad = function(K, n)
  local lo, lab = n.inputs[2], n.inputs[3]
  local x = K:node(lo)
  local m = x.shape[1]
  per_sample(K, n, lab, function(b, c)
    local base = x.batched and b and cfmt.term(b, m) or nil
    local xr, j, mx, sum = logsumexp_parts(K, lo, base, m)
    local vars = {}
    if b then vars[1] = {e = b, n = K.batch, w = m} end
    vars[#vars + 1] = {e = j, n = m, w = 1}
    local dl = K:node(n.inputs[1])
    local dlv = is_literal(dl) and atom(K:lit(dl.attr[1])) or at(K, n, 1, vars)
    K:loop(j, m)
    K:line(fmt("%s[%s] = %s * (%s / %s - (%s)(%s == %s));", K:ptr(n.id), cfmt.linear(vars),
      dlv, K:math("EXP", xr(j) .. " - " .. mx), sum, K.T, j, c))
    K:close()
  end)
end

-- E = mean((a - b)^2) per sample.
kernel.mse = function(K, n)
  local a, bn = K:node(n.inputs[1]), K:node(n.inputs[2])
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
  local p = root.op == "matmul" and root or nil
  for _, m in ipairs(members) do
    if m.op == "matmul" then p = m end
  end
  if p then
    matmul_group(K, root, members, p)
  elseif EW[root.op] or UPDATE[root.op] then
    ew_group(K, root, members)
  elseif kernel[root.op] and #members == 0 then
    kernel[root.op](K, root)
  else
    error(fmt("kernels.lua: no kernel for %s#%d with %d fused nodes", root.op, root.id,
      #members), 0)
  end
end

return M
