-- group.lua: a kernel's group as the C passes decided it -- the root, the
-- nodes fused into it (optimize.c), the elementwise formulas they compute,
-- the comment that says what the kernel does, the optimizer step -- and
-- the loop nest of a group without a product (ew_group).  gemm.lua and
-- kernels.lua build on it; emitter.lua reaches it through kernels.lua;
-- int8.lua prints the formulas F for its float fallback.
--
-- A kernel reads nothing of the graph but its own nodes' tables: what it
-- prints of the nodes they read is in each node's operand records
-- (n.operands[k], emit.c's push_operands: id, lit, shape, batched, full,
-- bcast, into, int, label, name, clobber).
--
-- The context K (emitter.lua) gives: K.T (element type), K:lit(v),
-- K:math(F, x), K:name(id), K:ptr(id), K:read(id, off),
-- K:scratch(id), K:iname(base), K:line(s), K:directive(s), K:open(s),
-- K:close(), K:loop(v, n, vec), K.batch, K.opt (optimizer), K:state(prefix, param
-- id), K.upd (update locals), K.target (the target row of target.c).

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

-- Strides of input k of node n over n's full index space (its record).
local function bcast(K, n, k)
  return n.operands[k].bcast
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
F.clip = function(K, n, a)  -- NaN stays NaN, as torch.clamp
  local lo, hi = atom(K:lit(n.attr[1])), atom(K:lit(n.attr[2]))
  return fmt("%s < %s ? %s : %s > %s ? %s : %s", a, lo, lo, a, hi, hi, a)
end
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
F.clip_grad = function(K, n, dy, x)  -- 1 where lo <= x <= hi, as torch.clamp
  return fmt("%s >= %s && %s <= %s ? %s : %s", x, atom(K:lit(n.attr[1])), x,
    atom(K:lit(n.attr[2])), dy, K:lit(0))
end
F.abs_grad = function(K, n, dy, x)
  return fmt("%s > 0 ? %s : %s < 0 ? -%s : %s", x, dy, x, dy, K:lit(0))
end
F.mse_grad = function(K, n, dl, a, b)
  return fmt("%s * %s * (%s - %s) / %s", dl, K:lit(2), a, b,
    K:lit(cfmt.numel(n.shape)))
end

------------------------------------------------------------------ comments

-- How a kernel's node is shown in comments: its name, or "op#id" (an
-- operand's record has its label, emit.c).
local function own_label(n)
  return n.name or (n.op .. "#" .. n.id)
end

-- The same of node 'id', looked up: for emitter.lua's comments (the arena
-- table, the scratch packs); the kernels read their operand records.
function M.label(K, id)
  local n = K:node(id)
  if is_literal(n) then return fmt("%g", n.attr[1]) end
  return own_label(n)
end

local SYM = {add = "+", sub = "-", mul = "*", div = "/"}

-- The node's computation as an expression of its inputs' labels.
local function expr(K, n)
  local a = {}
  for k, o in ipairs(n.operands or {}) do a[k] = o.label end
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
  if n.op == "clip" or n.op == "clip_grad" then
    a[#a + 1] = fmt("%g, %g", n.attr[1], n.attr[2])
  end
  local w = n.win
  if w then  -- the window, as the model wrote it
    local t = {fmt("kernel (%d, %d)", w.kh, w.kw)}
    if w.sh ~= 1 or w.sw ~= 1 then t[#t + 1] = fmt("stride (%d, %d)", w.sh, w.sw) end
    if w.pt + w.pl + w.pb + w.pr > 0 then
      t[#t + 1] = fmt("padding (%d, %d, %d, %d)", w.pt, w.pl, w.pb, w.pr)
    end
    if w.dh ~= 1 or w.dw ~= 1 then t[#t + 1] = fmt("dilation (%d, %d)", w.dh, w.dw) end
    if w.groups > 1 then t[#t + 1] = fmt("groups %d", w.groups) end
    if n.op:sub(1, 7) == "avgpool" and not w.count_pad then t[#t + 1] = "count_include_pad 0" end
    a[#a + 1] = table.concat(t, ", ")
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
  for _, o in ipairs(n.operands or {}) do
    if not o.lit and not o.int then t[#t + 1] = full_shape(K, o) end
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
  local head = fmt("%s%s = %s   %s", prefix, own_label(n), expr(K, n), shapes(K, n))
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
  if K.accum or root.op ~= "sgd_step" or root.attr[2] ~= 1 then return nil end
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
    local o = n.operands[k]
    if val[o.id] then return val[o.id] end
    if o.lit then return atom(K:lit(o.lit)) end
    return K:read(o.id, cfmt.offset(vars, full(K, n), o.bcast))
  end
  local function args(n)
    local t = {}
    for k = 1, #n.operands do t[k] = operand(n, k) end
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
  local pid = u.operands[1].id
  local idx = cfmt.linear(vars)
  local w = fmt("%s[%s]", K:ptr(pid), idx)
  if K.accum then  -- a micro-batch (emitter.lua): sum dJ/dW (decay: its L2 term) into acc
    local a = fmt("acc->%s[%s]", K.A.member[u.operands[1].name], idx)
    local g = decay and decay ~= 0 and fmt("%s + %s * %s", grad, atom(K:lit(decay)), w) or grad
    K:line(fmt("%s = first ? %s : %s + (%s);", a, g, a, g))
    return
  end
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

-- An elementwise group without a product (or an update): the loop nest
-- kernel.c chose (root.loops: the root's index space, contiguous
-- dimensions merged; root.unroll: the innermost unrolled).
local function ew_group(K, root, members)
  local D = root.loops or error(fmt("group.lua: no loop nest for %s#%d", root.op, root.id), 0)
  local P = cfmt.contiguous(D)
  local vars = {}
  if #D == 0 then K:open("") end
  for k = 1, #D do
    local v = K:iname(LOOP_NAMES[k])
    vars[k] = {e = v, n = D[k], w = P[k]}
    K:loop(v, D[k], k == #D and root.unroll)
  end
  group_body(K, root, members, vars)
  for _ = 1, math.max(#D, 1) do K:close() end
end

M.atom, M.bcast, M.LOOP_NAMES = atom, bcast, LOOP_NAMES
M.group_body, M.sgd_gradient, M.ew_group = group_body, sgd_gradient, ew_group

return M
