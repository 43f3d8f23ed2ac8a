-- kernels.lua: one loop nest per scheduled root node, parallel to ops.def.
--
-- A root is a node that is not fused (Node.fuse == -1) and is no leaf.
-- Its group is the root plus every node fused into it (optimize.c): a tree
-- of elementwise nodes and at most one matrix product.  The group is
-- emitted as one loop nest:
--   1. with a product: the product's loops, in one of five forms chosen
--      from its fixed shape (product_form); the elementwise nodes run as
--      the epilogue on the finished sums (bias, activation, activation
--      derivative, weight decay, optimizer update);
--        xt      C = X W^T with Matmul.pack (optimize.c: 16+ rows, 64+
--                columns): blocks of X^T packed into the kernel's arena
--                scratch, then the tile form on C^T = W X^T;
--        lane    C = L R^T otherwise (batch 1): MR x NR tiles of
--                accumulators of V lanes over k, summed by halves at the end
--                (in f32 with gradc_rowsum16_f32 where GRADC_ROWSUM16: the
--                one optional, non-C99 path, same tree, same bits);
--        packed  the same with a short k, 16+ rows and few columns: panels
--                of R^T packed into a stack buffer (<= 4 KiB), rank-1 tiles
--                (not with --no-pack);
--        tile    C = L R or L^T R (backward dY W, dY^T X): MR rows x G V
--                columns of accumulators, rank-1 updates over k (k == 1:
--                the outer product, straight into the epilogue);
--        simple  one scalar dot or one row of V accumulators per row:
--                small or repeated products, and every product of a
--                --no-fuse build (the naive baseline);
--      V = K.block (the target's vector: 16 f32, 8 f64 on the portable
--      and AVX-512 rows of target.c).  Every inner loop
--      is unit-stride and exactly one vector wide with independent lanes,
--      so gcc and clang vectorize it at -O2/-O3 without -ffast-math and
--      keep the accumulators in registers; sums differ from the simple
--      forms by reassociation only.  Short innermost loops carry
--      GRADC_VECTOR (gradc_rt.h), which keeps GCC from unrolling them and
--      vectorizing the loop around them instead;
--   2. without: nested loops over the root's index space, with the
--      dimensions that every operand walks contiguously merged into one;
--   3. a root that is no elementwise op or update: its kernel below
--      (long reductions sum in independent lanes, lane_sum).
-- Each fused node becomes a `const` local in the loop body, named after the
-- node, so the body reads like the math; operands are array reads at
-- offsets derived from the broadcast strides (cfmt.offset), or literals.
--
-- The context K (emitter.lua) gives: K.T (element type), K:lit(v),
-- K:math(F, x), K:node(id), K:name(id), K:ptr(id), K:read(id, off),
-- K:scratch(id), K:iname(base), K:line(s), K:directive(s), K:open(s),
-- K:close(), K:loop(v, n, vec), K.batch, K.opt (optimizer), K:state(prefix, param
-- id), K.upd (update locals).
--
-- Limits: tiles hold the whole k range in registers (no k blocking but in
-- the packed form), so very long k streams its operands from L2; the
-- unrolling is bounded by the tile (at most 8 rows, 16 accumulators).
-- Stack: the packed form's buffers (<= 4 KiB), the tiles' accumulators
-- (<= 16 V elements, 1 KiB f32); the xt form's scratch is in the arena,
-- planned and reported (--no-pack: none).  With GCC, strict ISO modes
-- (-std=c99) disable contraction into FMA; -ffp-contract=fast (the
-- GNU-mode default) gives it back.

local cfmt = require "cfmt"

local M = {}
local fmt, unpack = string.format, table.unpack

------------------------------------------------------------------ helpers

-- What an op is comes from ops.def through the node table (emit.c):
-- n.kind, n.ew (F_EW: elementwise), n.update (F_UPDATE: optimizer step).

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
  if n.update then return s end
  return (s ~= "" and s .. " -> " or "") .. full_shape(K, n)
end

-- The statement's text for a comment: at most TEXT_MAX characters (a long
-- line is cut, "..." at the end), so a line of a thousand terms does not
-- fill the file.
local TEXT_MAX = 72
local function source_text(n)
  if not n.text then return nil end
  local s = n.text:sub(1, 4 * TEXT_MAX)
  s = s:gsub("%s*#.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
  if #s > TEXT_MAX or #n.text > 4 * TEXT_MAX then s = s:sub(1, TEXT_MAX - 3) .. "..." end
  return s ~= "" and s or nil
end

-- Comment lines for one node of a kernel; 'shown': the lines whose text
-- this comment already shows (each is shown once).
local function describe(K, n, prefix, shown)
  local out = {}
  local where = n.line > 0 and fmt("%s:%d", K.file, n.line) or nil
  local src = source_text(n)
  if src and shown then
    if shown[n.line] then src = nil else shown[n.line] = true end
  end
  local head = fmt("%s%s = %s   %s", prefix, label(K, n.id), expr(K, n), shapes(K, n))
  if n.update then head = fmt("%s%s   %s", prefix, n.deriv or expr(K, n), shapes(K, n)) end
  if where and not n.backward and src then
    head = head .. fmt("   (%s: %s)", where, src)
  elseif where then
    head = head .. fmt("   (%s)", where)
  end
  out[1] = head
  if n.backward and n.deriv and not n.update then
    out[#out + 1] = "  " .. prefix .. n.deriv
  end
  if n.note then out[#out + 1] = "  " .. prefix .. n.note end
  return out
end

-- The comment before a kernel: every node of the group, fused ones first.
function M.comment(K, root, members)
  local lines, shown = {}, {}
  for _, m in ipairs(members) do
    for _, l in ipairs(describe(K, m, "", shown)) do lines[#lines + 1] = l end
    lines[#lines] = lines[#lines] .. "   [fused]"
  end
  for _, l in ipairs(describe(K, root, "", shown)) do lines[#lines + 1] = l end
  if #lines == 1 then
    K:line("/* " .. cfmt.comment(lines[1]) .. " */")
    return
  end
  K:line("/* " .. cfmt.comment(lines[1]))
  for i = 2, #lines do K:line(" * " .. cfmt.comment(lines[i])) end
  K:line(" */")
end

------------------------------------------------------------------ groups

-- The decay of a plain SGD step in the one-factor form (optimize.c, step
-- 0: root.attr[2] == 1), which M.update folds into a factor of W: the L2
-- term c = root.attr[1] optimize took out of the gradient, plus the
-- optimizer's weight_decay.  Returns {c =} or nil.
local function decay_term(K, root)
  if root.op ~= "sgd_step" or root.attr[2] ~= 1 then return nil end
  if root.attr[1] ~= 0 or K.opt.weight_decay ~= 0 then return {c = root.attr[1]} end
  return nil
end

-- The node whose value a plain SGD step in the one-factor form takes as
-- the gradient (lr G is then computed per row), or nil for other steps.
local function sgd_gradient(K, root)
  if root.op ~= "sgd_step" or root.attr[2] ~= 1 then return nil end
  return root.inputs[2]
end

-- Statements computing the group at one element: each fused node as a
-- local, then the root's store (or update).  'vars' index the root's
-- elements; the product 'mmid', if any, has the value 'mmval', and
-- 'lrval', when the product is a plain SGD step's gradient
-- (sgd_gradient), is lr times that value.
local function group_body(K, root, members, vars, mmid, mmval, lrval)
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
    if m.id ~= mmid and val[m.id] == nil then
      local name = K:name(m.id)
      K:line(fmt("const %s %s = %s;", K.T, name, F[m.op](K, m, args(m))))
      val[m.id] = name
    end
  end
  if root.update then
    local decay = decay_term(K, root)
    M.update(K, root, vars, operand(root, 2), decay and decay.c, lrval)
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
-- optimizer's weight_decay added to the gradient, as eval.c).  With
-- 'decay' (decay_term) the gradient is grad + decay W, and plain SGD steps
-- W = (1 - lr decay') W - lr grad, decay' counting weight_decay too.
-- 'lrgrad', if given, is lr grad, computed so by the caller (plain SGD
-- of a fused build only).
function M.update(K, u, vars, grad, decay, lrgrad)
  local o, T = K.opt, K.T
  local pid = u.inputs[1]
  local idx = cfmt.linear(vars)
  local w = fmt("%s[%s]", K:ptr(pid), idx)
  local g = K:iname("g")
  if decay or lrgrad then
    local step = lrgrad
    if not step then
      K:line(fmt("const %s %s = %s;", T, g, grad))
      step = fmt("%s * %s", K.upd.lr, g)
    end
    if decay then
      -- W - lr (G + c W) = (1 - lr c) W - lr G: one FMA depends on the load
      -- of W (GCC loads W twice for the other form and the step, which
      -- streams W from L2, runs 30% slower)
      K:line(fmt("%s = (%s - %s * %s) * %s - %s;", w, K:lit(1), K.upd.lr,
        atom(K:lit(decay + o.weight_decay)), w, step))
    else
      K:line(fmt("%s -= %s;", w, step))  -- lrgrad without decay: no weight_decay
    end
    return
  end
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
    K:loop(v, D[k], k == #D and k > 1 and D[k] <= 2 * K.block)
  end
  group_body(K, root, members, vars)
  for _ = 1, math.max(#D, 1) do K:close() end
end

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
local function halves(K, a, l)
  local w = K.block
  while w > 4 do
    w = w // 2
    K:loop(l, w)
    K:line(fmt("%s[%s] += %s[%s + %d];", a, l, a, l, w))
    K:close()
  end
  return fmt("(%s[0] + %s[2]) + (%s[1] + %s[3])", a, a, a, a)
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
  local MR = mm.m >= 2 and 2 or 1
  local NR = divisor(mm.n, 5, 8) or math.min(mm.n, 8)
  local kfull = mm.k - mm.k % V
  local S = p.side >= 0 and K:node(p.side) or nil  -- select.c, step 2
  local total, sq = nil, K:iname("sq")
  if S then
    total = K:iname("ssq_" .. label(K, S.inputs[1]))
    K.sq[S.id] = total
    K.fdecl[#K.fdecl + 1] = fmt("%s %s = %s;  /* sumsq(%s), summed in the product's kernel */", T,
      total, K:lit(0), label(K, S.inputs[1]))
  end
  blocks(K, "j0", mm.n, NR, function(j0, nr)
    blocks(K, "i0", mm.m, MR, function(i0, mr, inloop)
      local d, l, q, t = K:iname("d"), K:iname("l"), K:iname("k0"), K:iname("t")
      local nt = mr * nr
      if not inloop then K:open("") end
      K:line(fmt("%s %s[%d][%d];", T, d, nt, V))
      if S then K:line(fmt("%s %s[%d][%d];", T, sq, nr, V)) end
      K:loop(t, nt)
      K:loop(l, V)
      K:line(fmt("%s[%s][%s] = %s;", d, t, l, K:lit(0)))
      if S and nt == nr then K:line(fmt("%s[%s][%s] = %s;", sq, t, l, K:lit(0))) end
      K:close()
      K:close()
      local function step(k0, width)
        K:loop(l, width)
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
      if kfull == V then
        step("0", V)
      elseif kfull > 0 then
        K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", q, q, kfull, q, V))
        step(q, V)
        K:close()
      end
      if kfull < mm.k then step(cfmt.int(kfull), mm.k - kfull) end
      if S then  -- the tile's squares into the total: rows, then lanes by halves
        local ss = K:iname("sqs")
        K:line(fmt("%s %s[%d];", T, ss, V))
        K:loop(l, V)
        K:line(fmt("%s[%s] = %s[0][%s];", ss, l, sq, l))
        K:close()
        if nr > 1 then
          K:open(fmt("for (int %s = 1; %s < %d; %s++)", t, t, nr, t))
          K:loop(l, V)
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
      K:loop(t, nt)
      halves(K, fmt("%s[%s]", d, t), l)
      K:close()
      epilogue(function(ti)
        local val = K:iname("v")
        K:line(fmt("const %s %s = (%s[%s][0] + %s[%s][2]) + (%s[%s][1] + %s[%s][3]);", T, val,
          d, ti, d, ti, d, ti, d, ti))
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
-- accumulators.
--
-- The loops work on a view v of the product: its sizes v.m, v.n, v.k, the
-- operands v.L(row, q) and v.R(q, col), and v.vars(row, col), the
-- epilogue's index variables of C's element (row, col) of the view.
local function tile_loops(K, root, members, p, v)
  local T, V = K.T, K.block
  local L, R = v.L, v.R
  local MR = divisor(v.m, 4, 8) or math.min(v.m, 8)
  local G = math.max(1, math.min(4, (16 + MR - 1) // MR))
  if v.n < G * V then G = math.max(1, v.n // V) end
  local function tile(j0, nr, i0, mr)
    local g = nr > V and nr // V or 1
    local w = nr > V and V or nr
    local a, l, q, ii, t = K:iname("a"), K:iname("l"), K:iname("k"), K:iname("ii"), K:iname("t")
    K:line(fmt("%s %s[%d][%d];", T, a, mr * g, w))
    K:loop(t, mr * g)
    K:loop(l, w)
    K:line(fmt("%s[%s][%s] = %s;", a, t, l, K:lit(0)))
    K:close()
    K:close()
    local function body(kq)
      for r = 0, mr - 1 do
        K:line(fmt("const %s %s = %s;", T, K:iname("x" .. r), L(plus(i0, r), kq)))
      end
      K:loop(l, w)
      for c = 0, g - 1 do
        local rv = K:iname(g > 1 and "r" .. c or "r")
        local col = plus(j0, c * V)
        col = (col == "0") and l or fmt("%s + %s", col, l)
        K:line(fmt("const %s %s = %s;", T, rv, R(kq, col)))
        for r = 0, mr - 1 do
          K:line(fmt("%s[%d][%s] += %s * %s;", a, r * g + c, l, K:iname("x" .. r), rv))
        end
      end
      K:close()
    end
    if v.k > 1 then
      K:loop(q, v.k)
      body(q)
      K:close()
    else
      body("0")
    end
    -- the epilogue, row by row (column j = c * V + l of the tile)
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
local function xt_product(K, root, members, p)
  local mm = p.mm
  local L, R = operands(K, p)
  local xt, P = K:scratch(p.id), mm.pack
  blocks(K, "ib", mm.m, P, function(ib, pb, inloop)
    if not inloop then K:open("") end
    local q, i = K:iname("k"), K:iname("i")
    K:loop(q, mm.k)
    K:loop(i, pb)
    K:line(fmt("%s[%s] = %s;", xt, cfmt.sum({cfmt.term(q, pb), i}, 2), L(plus(ib, 0) == "0" and i or
      fmt("(%s + %s)", ib, i), q)))
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
  local MB, KC, MR = mm.mb, mm.kc, mm.mr  -- the panel and tile select.c chose
  local pk, cp, l, kk, k0, ib, i, ii, a = K:iname("pk"), K:iname("cp"), K:iname("l"),
    K:iname("kk"), K:iname("k0"), K:iname("ib"), K:iname("i"), K:iname("ii"), K:iname("a")
  local ibv = mm.m > MB and ib or nil
  if ibv then K:open(fmt("for (int %s = 0; %s < %d; %s += %d)", ib, ib, mm.m, ib, MB)) end
  blocks(K, "j0", mm.n, V, function(j0, w, inloop)
    if not inloop then K:open("") end
    K:line(fmt("%s %s[%d][%d];", T, pk, KC, V))
    K:line(fmt("%s %s[%d][%d];", T, cp, MB, V))
    K:loop(i, MB)
    K:loop(l, V)
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
    K:loop(l, w)
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
    K:loop(l, V)
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
    K:loop(l, V)
    local rv = K:iname("r")
    K:line(fmt("const %s %s = %s[%s][%s];", T, rv, pk, kk, l))
    for r = 0, MR - 1 do
      K:line(fmt("%s[%d][%s] += %s * %s;", a, r, l, K:iname("x" .. r), rv))
    end
    K:close()
    K:close()
    K:loop(l, V)
    for r = 0, MR - 1 do
      K:line(fmt("%s[%s][%s] = %s[%d][%s];", cp, crow(r), l, a, r, l))
    end
    K:close()
    K:close()
    if kv then K:close() end
    -- the epilogue on the block's sums
    K:loop(i, MB)
    K:loop(l, w)
    local row = ibv and fmt("(%s + %s)", ib, i) or i
    local c = j0 == 0 and l or fmt("(%s + %s)", j0, l)
    group_body(K, root, members, c_vars(mm, row, c), p.id, fmt("%s[%s][%s]", cp, i, l))
    K:close()
    K:close()
    if not inloop then K:close() end
  end)
  if ibv then K:close() end
end

-- The form of a product: "lane", "tile" or "simple" (see above).  The
-- blocked forms pay once the product has some size; tiny products and
-- the --no-fuse baseline keep the simple loops.
local function matmul_group(K, root, members, p)
  local form = p.mm.form  -- chosen by select.c
  if form == "xt" then
    xt_product(K, root, members, p)
  elseif form == "packed" then
    packed_product(K, root, members, p)
  elseif form == "lane" then
    lane_product(K, root, members, p)
  elseif form == "tile" then
    tile_product(K, root, members, p)
  else
    simple_product(K, root, members, p)
  end
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

-- Per-sample reductions to a scalar: sum, mean, sumsq.  Long ones (at
-- least 2 V elements) sum in independent lanes (lane_sum): V of them, 4 V
-- past 8 V elements, so several vector additions are in flight.
local function reduction(K, n)
  if K.sq[n.id] then  -- summed by the product reading the same weights (lane_product)
    K:line(fmt("%s[0] = %s;", K:ptr(n.id), K.sq[n.id]))
    return
  end
  local x = K:node(n.inputs[1])
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
  if m >= 2 * K.block then
    sum = lane_sum(K, m, m >= 8 * K.block and 4 or 1, term)
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

-- L = logsumexp(x) - x[y], stable (the row max subtracted).  With
-- n.clobber (optimize.c, step 5) the loss leaves e_j = exp(x_j - max) in
-- x's buffer and its gradient needs no exp (PyTorch keeps the softmax
-- likewise).
kernel.cross_entropy = function(K, n)
  local lo, lab = n.inputs[1], n.inputs[2]
  local x = K:node(lo)
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
  local lo, lab, loss = n.inputs[2], n.inputs[3], n.inputs[4]
  local x = K:node(lo)
  local m = x.shape[1]
  local shared = K:node(loss).clobber == 1
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
      local ln = K:node(loss)
      K:line(fmt("const %s %s = %s + %s;", K.T, lse, K:read(loss, ln.batched and b or "0"), xr(c)))
      p = K:math("EXP", xr(j) .. " - " .. lse)
    end
    local vars = {}
    if b then vars[1] = {e = b, n = K.batch, w = m} end
    vars[#vars + 1] = {e = j, n = m, w = 1}
    local dl = K:node(n.inputs[1])
    local dlv = is_literal(dl) and atom(K:lit(dl.attr[1])) or at(K, n, 1, vars)
    K:loop(j, m, true)
    K:line(fmt("%s[%s] = %s * (%s - (%s)(%s == %s));", K:ptr(n.id), cfmt.linear(vars),
      dlv, p, K.T, j, c))
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
