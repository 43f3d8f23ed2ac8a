-- emitter.lua: the emitter's entry, emit(model) -> header text, C text.
--
-- 'model' is the table emit.c builds (plain data; tests build it by hand):
--   name (symbol prefix), model, source, version, batch, f64, infer_only,
--   params, regenerate and fusion (the banner's options and fusion text),
--   align, values = {{name, text}},
--   modes = { graph, ... }: MODE_INFER first, then train and grad; each
--   graph has mode, batch, loss, objective, out, track, track_mean, opt,
--   labels and label_classes (the class labels it checks on entry),
--   arena_bytes, lower_bound, unshared_bytes and nodes[id + 1] (ids are
--   0-based, as in C).
--
-- 1. Collect the API: inputs and parameters in declaration order (by source
--    position), outputs, tracked names, label class counts (api.lua).
-- 2. For each mode, one entry point: walk the nodes in schedule order and
--    emit one loop nest per root (kernels.lua), with the label check first,
--    the stats and the non-finite check before the first update, and the
--    copies the caller's arrays need last.  Locals are declared after the
--    body is known, so nothing unused is declared.
-- 3. Assemble the banner, the buffer plans, the types and every function.
--
-- Output depends only on the input tables (arrays walked in order), so it
-- is byte-identical from run to run.

local cfmt = require "cfmt"
local kernels = require "kernels"
local api = require "api"
local group = require "group"

local M = {}
local fmt = string.format

------------------------------------------------------------------ context

local Ctx = {}
Ctx.__index = Ctx

-- A kernel context for graph 'g' of model 'A' (the API summary): names,
-- output lines, used pointers.  'fixed' lists the function's parameter
-- names that are not node names (p, s, st, grad, arena); 'api' the names
-- of its array parameters (inputs, then outputs), which come first.
--
-- Names (cfmt.cname): the fixed ones, then the array parameters, then the
-- named nodes, then anonymous nodes ("t" .. id), then every name a kernel
-- asks for (K:iname): each later one yields to the earlier, and none can
-- be a keyword, a library name or a PREFIX_/gradc_ symbol.  So a user's
-- name is mangled only where it would clash (README, "Names").
local function new_ctx(A, g, fixed, api)
  local K = setmetatable({
    A = A, g = g, T = A.T, f64 = A.f64, batch = g.batch, opt = g.opt,
    file = A.file, target = A.model.target,
    block = A.model.target.vec_bytes // (A.f64 and 8 or 4),  -- lanes of one vector
    out = cfmt.lines(), ind = 1, names = {}, taken = {}, inames = {},
    used = {}, decl = {}, sdecl = {}, upd = {}, sq = {}, fdecl = {}, api = {},
  }, Ctx)
  for _, f in ipairs(fixed) do K.taken[f] = true end
  for k, a in ipairs(api) do K.api[k] = cfmt.cname(a, K.taken, A.prefix) end
  local api_of = {}
  for k, a in ipairs(api) do api_of[a] = api_of[a] or K.api[k] end
  -- a node is its parameter's array: an input, or an output in the caller's
  -- buffer under its own name
  local own = {}
  for _, n in ipairs(g.nodes) do
    if n.op == "input" then own[n.id] = api_of[n.name] end
  end
  for k, id in ipairs(g.out or {}) do
    local n = g.nodes[id + 1]
    if n and n.sto == "output" and (g.out_name or {})[k] == n.name then own[id] = api_of[n.name] end
  end
  for pass = 1, 2 do
    for _, n in ipairs(g.nodes) do
      local leaf = n.kind == "leaf" and n.op ~= "input"
      if not leaf and not n.update and (n.name ~= nil) == (pass == 1) then
        K.names[n.id] = own[n.id] or cfmt.cname(n.name or ("t" .. n.id), K.taken, A.prefix)
      end
    end
  end
  -- each root's fused members, as emit.c lists them (n.members: ids)
  K.members = {}
  for _, n in ipairs(g.nodes) do
    if n.members and #n.members > 0 then
      local list = {}
      for k, id in ipairs(n.members) do list[k] = g.nodes[id + 1] end
      K.members[n.id] = list
    end
  end
  return K
end

function Ctx:node(id)
  local n = self.g.nodes[id + 1]
  if not n then error(fmt("emitter.lua: no node %s", tostring(id)), 0) end
  return n
end

function Ctx:name(id)
  return self.names[id] or error(fmt("emitter.lua: node %d has no local name", id), 0)
end

-- An internal identifier that no node name of this function uses.
function Ctx:iname(base)
  local s = self.inames[base]
  if not s then
    s = cfmt.cname(base, self.taken, self.A.prefix)
    self.inames[base] = s
  end
  return s
end

function Ctx:lit(v)
  return cfmt.lit(v, self.f64)
end

-- A runtime math macro: GRADC_EXPF(x) for f32, GRADC_EXP(x) for f64.
function Ctx:math(f, x)
  return fmt("GRADC_%s%s(%s)", f, self.f64 and "" or "F", x)
end

function Ctx:line(s)
  self.out:add(s == "" and "" or ("\t"):rep(self.ind) .. s)
end

-- A preprocessor line, at the first column.
function Ctx:directive(s)
  self.out:add(s)
end

function Ctx:open(s)
  self:line(s == "" and "{" or s .. " {")
  self.ind = self.ind + 1
end

function Ctx:close()
  self.ind = self.ind - 1
  self:line("}")
end

-- for (v = 0; v < n; v++) {; 'vec': a short innermost loop to vectorize
-- as it stands (GRADC_VECTOR, gradc_rt.h).
function Ctx:loop(v, n, vec)
  self:open(fmt("%sfor (int %s = 0; %s < %d; %s++)", vec and "GRADC_VECTOR " or "", v, v, n, v))
end

-- The C expression of node id's storage (a pointer to its first element).
function Ctx:ptr(id)
  local n = self:node(id)
  local sto = n.sto
  if sto == "input" or sto == "output" then
    local s = self.io[id] or error(fmt("emitter.lua: %s#%d is no argument", n.op, id), 0)
    self.used[s] = true
    return s
  elseif sto == "param" then
    self.used.p = true
    return "p->" .. self.A.member[n.name]
  elseif sto == "grad" then
    self.used.grad = true
    return "grad->" .. self.A.member[self.grad_of[id]]
  elseif sto == "arena" then
    self.decl[id] = true
    return self:name(id)
  end
  error(fmt("emitter.lua: %s#%d (%s) has no memory", n.op, id, tostring(sto)), 0)
end

-- The scratch memory of node id's kernel (Node.scratch, in the arena at
-- Node.scratch_offset), declared "xt_NAME".
function Ctx:scratch(id)
  local n = self:node(id)
  if n.scratch <= 0 then error(fmt("emitter.lua: %s#%d has no scratch", n.op, id), 0) end
  self.sdecl[id] = self.sdecl[id] or self:iname("xt_" .. self:name(id))
  return self.sdecl[id]
end

-- Element 'off' of node id: a literal for constants and fills.
function Ctx:read(id, off)
  local n = self:node(id)
  if kernels.is_literal(n) then
    local s = self:lit(n.attr[1])
    return s:sub(1, 1) == "-" and "(" .. s .. ")" or s
  end
  return fmt("%s[%s]", self:ptr(id), off)
end

-- An optimizer state array of parameter id ("s->m_W1").
function Ctx:state(prefix, id)
  self.used.s = true
  return fmt("s->%s_%s", prefix, self.A.member[self:node(id).name])
end

------------------------------------------------------------------ functions

-- Where node id's value becomes available: the step of the root that
-- computes it, or -1 for leaves.
local function exec_step(g, id)
  return g.nodes[id + 1].step  -- (emit.c, from the scheduled graph)
end

-- if (y[b] < 0 || y[b] >= classes) return GRADC_EBADLABEL; for every label
-- input this graph reads.
local function label_checks(K)
  for i, lab in ipairs(K.g.labels or {}) do  -- none in hand-made test graphs
    local y, classes = K:node(lab), K.g.label_classes[i]
    local nb = y.batched and K.batch or 1
    local b = K:iname("b")
    K:line(fmt("/* class labels in [0, %d), before anything changes */", classes))
    local at = nb > 1 and fmt("%s[%s]", K:ptr(lab), b) or K:ptr(lab) .. "[0]"
    if nb > 1 then K:loop(b, nb) else K:open("") end
    K:open(fmt("if (%s < 0 || %s >= %d)", at, at, classes))
    K:line("return GRADC_EBADLABEL;")
    K:close()
    K:close()
  end
end

-- Walk the roots in schedule order; 'after(step)' runs after each root.
local function kernels_in_order(K, after)
  after(-1)
  for _, n in ipairs(K.g.nodes) do
    local root = n.kind ~= "leaf" and not (n.fuse and n.fuse >= 0)
    if root then
      K:line("")
      kernels.emit_root(K, n, K.members[n.id] or {})
    end
    after(n.id)
  end
end

-- Copy (or fill, or broadcast) node id's value into dst[0..count), laid
-- out per sample when 'batched'.
local function copy_out(K, dst, id, count, batched, what)
  local n = K:node(id)
  local per = cfmt.numel(n.shape)
  local i = K:iname("i")
  K:line("")
  K:line(fmt("/* %s */", cfmt.comment(what)))
  if kernels.is_literal(n) then
    K:loop(i, count)
    K:line(fmt("%s[%s] = %s;", dst, i, K:read(id, "0")))
    K:close()
    return
  end
  local src = n.batched and i or (per > 1 and fmt("%s %% %d", i, per) or "0")
  if not batched then src = i end
  K:loop(i, count)
  K:line(fmt("%s[%s] = %s;", dst, i, K:read(id, src)))
  K:close()
end

-- The update's per-call values (K.upd, and K.pre: the learning rate,
-- Adam's bias corrections), declared at the top of the body.
local function update_values(A, K, g)
  local T = A.T
  K.upd.lr = K:iname("lr")
  K.pre = {fmt("const %s %s = s->lr;", T, K.upd.lr)}
  if g.opt.kind == "adam" then
    -- "t" would be shadowed by the kernels' tile loops (-Wshadow)
    local t, bc1, bc2 = K:iname("adam_t"), K:iname("bc1"), K:iname("bc2")
    K.upd.step, K.upd.bc2s = K:iname("step"), K:iname("bc2s")
    K.pre = {
      fmt("/* Adam's bias corrections for step t (PyTorch: 1 - beta^t) */"),
      fmt("const int32_t %s = s->step + 1;", t),
      fmt("const double %s = 1.0 - %s_powi(%s, %s);", bc1, A.prefix, cfmt.lit(g.opt.beta1, true), t),
      fmt("const double %s = 1.0 - %s_powi(%s, %s);", bc2, A.prefix, cfmt.lit(g.opt.beta2, true), t),
      fmt("const %s %s = (%s)((double)s->lr / %s);", T, K.upd.step, T, bc1),
      fmt("const %s %s = (%s)GRADC_SQRT(%s);", T, K.upd.bc2s, T, bc2),
    }
    K.used.s = true
  end
  K.used.s = true
end

-- The body of one entry point; returns the function's text lines.
local function gen_entry(A, g, kind, accum)
  local fixed = {"p", "arena"}
  if kind == "train" then fixed = {"p", "s", "st", "arena"} end
  -- (the step of one micro-batch: its updates sum the gradients into acc)
  if accum then fixed = {"p", "acc", "first", "st", "arena"} end
  if kind == "grad" then fixed = {"p", "grad", "st", "arena"} end
  local inputs = kind == "infer" and A.infer_inputs or A.inputs
  local api = {}
  for _, inp in ipairs(inputs) do api[#api + 1] = inp.name end
  if kind == "infer" then
    for _, o in ipairs(A.outputs) do api[#api + 1] = o.name end
  end
  local K = new_ctx(A, g, fixed, api)
  K.accum = accum
  -- arguments: inputs (and outputs) by name
  K.io, K.args = {}, {}
  local by_name = {}
  for _, n in ipairs(g.nodes) do
    if n.op == "input" and n.name then by_name[n.name] = n end
  end
  for k, inp in ipairs(inputs) do
    local n = by_name[inp.name]
    local cn = K.api[k]
    if n then K.io[n.id] = cn end
    K.args[#K.args + 1] = {decl = fmt("const %s *%s", inp.int and "int32_t" or A.T, cn), name = cn}
  end
  if kind == "infer" then
    for k, id in ipairs(g.out) do
      local cn = K.api[#inputs + k]
      if K:node(id).sto == "output" and not K.io[id] then K.io[id] = cn end
      A.outputs[k].cname = cn
      K.args[#K.args + 1] = {decl = fmt("%s *%s", A.T, cn), name = cn}
    end
  end
  -- gradients written straight into the caller's struct
  K.grad_of = {}
  if kind == "grad" then
    for _, pa in ipairs(A.params) do
      local pn = g.nodes[pa.ids[g.mode] + 1]
      if pn and pn.grad and pn.grad >= 0 and not pn.frozen then
        local gn = K:node(pn.grad)
        if gn.sto == "grad" and not K.grad_of[gn.id] then K.grad_of[gn.id] = pa.name end
      end
    end
  end

  -- where the objective is checked: before the first update
  local first_update
  for _, n in ipairs(g.nodes) do
    if n.update and not first_update then first_update = n.id end
  end
  local stats = {}
  if kind ~= "infer" then
    stats[#stats + 1] = {id = g.loss, field = "objective"}
    for k, id in ipairs(g.track_mean) do
      stats[#stats + 1] = {id = id, field = A.tracks[k].member}
    end
    if g.loss < 0 then error("emitter.lua: a training graph without a loss", 0) end
    if first_update and exec_step(g, g.loss) > first_update then
      error(fmt("emitter.lua: the loss (step %d) is scheduled after an update (step %d)",
        exec_step(g, g.loss), first_update), 0)
    end
  end

  -- the update's per-call values
  if kind == "train" and first_update and not accum then update_values(A, K, g) end

  label_checks(K)
  local checked = false
  local function check_objective()
    if kind == "infer" or checked then return end
    checked = true
    K:line("")
    K:line("/* a non-finite objective changes nothing */")
    K:open(fmt("if (!GRADC_ISFINITE(%s))", K:read(g.loss, "0")))
    K:line("return GRADC_ENONFINITE;")
    K:close()
  end
  kernels_in_order(K, function(step)
    for _, s in ipairs(stats) do
      if exec_step(g, s.id) == step then
        K.used.st = true
        K:open("if (st)")
        K:line(fmt("st->%s = %s;", s.field, K:read(s.id, "0")))
        K:close()
      end
    end
    if first_update and step + 1 == first_update then check_objective() end
  end)
  check_objective()

  -- the caller's arrays that no kernel wrote
  if kind == "infer" then
    for k, id in ipairs(g.out) do
      local o = A.outputs[k]
      local n = K:node(id)
      if K.io[id] ~= o.cname then
        copy_out(K, o.cname, id, A.batch * o.size, true, "output " .. o.name)
        K.used[o.cname] = true
      elseif not n.batched and A.batch > 1 then
        local i = K:iname("i")
        K:line("")
        K:line(fmt("/* output %s is the same for every sample */", cfmt.comment(o.name)))
        K:loop(i, (A.batch - 1) * o.size)
        K:line(fmt("%s[%d + %s] = %s[%s %% %d];", o.cname, o.size, i, o.cname, i, o.size))
        K:close()
      end
    end
  end
  if kind == "grad" then
    for _, pa in ipairs(A.params) do
      local pn = g.nodes[pa.ids[g.mode] + 1]
      local gid = pn and pn.grad or -1
      local dst = "grad->" .. pa.member
      K.used.grad = true
      if pa.frozen or gid < 0 then
        K:line("")
        K:line(fmt("/* %s: %s */", pa.name, pa.frozen and "frozen, no gradient" or
          "does not reach the objective"))
        K:line(fmt("gradc_fill_%s(%s, %d, 0.0);", A.f64 and "f64" or "f32", dst, pa.count))
      elseif K.grad_of[gid] ~= pa.name then
        copy_out(K, dst, gid, pa.count, false, fmt("dJ/d%s", pa.name))
      end
    end
  end
  if kind == "train" and not accum then
    K:line("")
    K:line("s->step++;")
    K.used.s = true
  end
  K:line("return GRADC_OK;")
  return K
end

-- The declarations a body needs, then the body.
local function finish(A, K, sig, params)
  local lines = cfmt.lines()
  lines:add(sig)
  lines:add("{")
  local any = false
  for _, n in ipairs(K.g.nodes) do
    if K.decl[n.id] or K.sdecl[n.id] then any = true end
  end
  if any then
    K.used.arena = true
    lines:add(fmt("\tunsigned char *%s = arena ? (unsigned char *)arena : %s_STATIC_ARENA_;",
      K:iname("mem"), A.prefix))
    lines:add(fmt("\tif (!%s)", K:iname("mem")))
    lines:add("\t\treturn GRADC_ENOARENA;")
    for _, n in ipairs(K.g.nodes) do
      if K.decl[n.id] then
        -- through void *: the arena is aligned, -Wcast-align cannot know it
        lines:add(fmt("\t%s *%s = (%s *)(void *)(%s + %d);", A.T, K:name(n.id), A.T, K:iname("mem"),
          n.offset))
      end
    end
    for _, n in ipairs(K.g.nodes) do
      if K.sdecl[n.id] then
        lines:add(fmt("\t%s *%s = (%s *)(void *)(%s + %d);  /* scratch of %s */", A.T, K.sdecl[n.id],
          A.T, K:iname("mem"), n.scratch_offset, kernels.label(K, n.id)))
        -- a portable file's scalar kernels read X in place (select.c)
        if #((n.mm or {}).tiles or {}) > 1 then lines:add(fmt("\t(void)%s;", K.sdecl[n.id])) end
      end
    end
  end
  for _, d in ipairs(K.fdecl) do lines:add("\t" .. d) end
  for _, p in ipairs(params) do
    if not K.used[p] then lines:add(fmt("\t(void)%s;", p)) end
  end
  for _, s in ipairs(K.pre or {}) do lines:add("\t" .. s) end
  lines:append(K.out)
  lines:add("}")
  return lines
end

local function arg_names(K)
  local t = {}
  for _, a in ipairs(K.args) do t[#t + 1] = a.name end
  return t
end

local function arg_decls(K)
  local t = {}
  for _, a in ipairs(K.args) do t[#t + 1] = a.decl end
  return table.concat(t, ", ")
end

-- int NAME_infer(const NAME_params *p, inputs..., outputs..., void *arena)
local function gen_infer(A, g)
  local K = gen_entry(A, g, "infer")
  local sig = fmt("int %s_infer(const %s_params *p, %s, void *arena)", A.prefix, A.prefix,
    arg_decls(K))
  local params = {"p"}
  for _, n in ipairs(arg_names(K)) do params[#params + 1] = n end
  params[#params + 1] = "arena"
  A.protos.infer = sig
  return finish(A, K, sig, params)
end

local function gen_train(A, g)
  local K = gen_entry(A, g, "train")
  local sig = fmt("int %s_train_step(%s_params *p, %s_state *s, %s, %s_stats *st, void *arena)",
    A.prefix, A.prefix, A.prefix, arg_decls(K), A.prefix)
  local params = {"p", "s"}
  for _, n in ipairs(arg_names(K)) do params[#params + 1] = n end
  params[#params + 1] = "st"
  params[#params + 1] = "arena"
  A.protos.train = sig
  return finish(A, K, sig, params)
end

local function gen_grad(A, g)
  local K = gen_entry(A, g, "grad")
  local sig = fmt("int %s_grad(const %s_params *p, %s, %s_params *grad, %s_stats *st, void *arena)",
    A.prefix, A.prefix, arg_decls(K), A.prefix, A.prefix)
  local params = {"p"}
  for _, n in ipairs(arg_names(K)) do params[#params + 1] = n end
  params[#params + 1] = "grad"
  params[#params + 1] = "st"
  params[#params + 1] = "arena"
  A.protos.grad = sig
  return finish(A, K, sig, params)
end

-- Micro-batches (fitbuild.c, --fit): graph g is the training step of one
-- micro-batch of g.batch samples whose updates, instead of stepping,
-- sum each parameter's gradient into 'acc' as soon as it is complete (so
-- no gradient outlives its layer, as in the plain step), emitted as the
-- static NAME_micro_step_.  NAME_train_step calls it g.micro times on
-- consecutive slices of the batch, summing in the arena at g.micro_acc,
-- then divides by g.micro (the batch mean of the objective is the mean of
-- the micro-batches' means) and updates every parameter once; NAME_grad
-- sums straight into the caller's struct.  Returns three bodies.
local function gen_micro(A, g)
  local P, m, b = A.prefix, g.micro, g.batch
  local K = gen_entry(A, g, "train", true)
  local step = P .. "_micro_step_"
  local sig = fmt("static int %s(const %s_params *p, %s, %s_params *acc, int first, %s_stats *st, void *arena)",
    step, P, arg_decls(K), P, P)
  local params = {"p"}
  for _, n in ipairs(arg_names(K)) do params[#params + 1] = n end
  for _, n in ipairs({"acc", "first", "st", "arena"}) do params[#params + 1] = n end
  local micro_fn = finish(A, K, sig, params)
  local names, decls = arg_names(K), arg_decls(K)
  -- the parameters whose gradients the step sums (an update each)
  local summed = {}
  for _, n in ipairs(g.nodes) do
    if n.update then summed[n.operands[1].name] = n.operands[1].id end
  end

  -- the loop over the micro-batches, summing into 'into' ("acc" or "grad")
  local function body(E, into, which)
    local mem, mb, rc, i = E:iname("mem"), E:iname("mb"), E:iname("rc"), E:iname("i")
    local sk, sum = E:iname("sk"), E:iname("sum")
    E:line(fmt("/* %d micro-batches of %d sample%s (--fit): the gradients of each are summed,", m, b,
      b == 1 and "" or "s"))
    E:line(fmt(" * then divided by %d%s */", m, which == "train" and ", and one update follows" or ""))
    E:line(fmt("unsigned char *%s = arena ? (unsigned char *)arena : %s_STATIC_ARENA_;", mem, P))
    E:open(fmt("if (!%s)", mem))
    E:line("return GRADC_ENOARENA;")
    E:close()
    if which == "train" then
      E:line(fmt("%s_params *acc = (%s_params *)(void *)(%s + %d);", P, P, mem, g.micro_acc))
    end
    E:line(fmt("%s_stats %s, %s;", P, sk, sum))
    E:loop(mb, m)
    local args = {"p"}
    for k, inp in ipairs(A.inputs) do
      args[#args + 1] = fmt("%s + %s * %d", names[k], mb, b * inp.size)
    end
    E:line(fmt("const int %s = %s(%s, %s, %s == 0, &%s, %s);", rc, step, table.concat(args, ", "),
      into, mb, sk, mem))
    E:open(fmt("if (%s != GRADC_OK)", rc))
    E:open(fmt("if (st && %s == GRADC_ENONFINITE)", rc))  -- (a bad label: before any stats)
    E:line(fmt("*st = %s;", sk))
    E:close()
    E:line(fmt("return %s;", rc))
    E:close()
    local fields = {"objective"}
    for _, t in ipairs(A.tracks) do fields[#fields + 1] = t.member end
    for _, f in ipairs(fields) do
      E:line(fmt("%s.%s = %s ? %s.%s + %s.%s : %s.%s;", sum, f, mb, sum, f, sk, f, sk, f))
    end
    E:close()
    for _, f in ipairs(fields) do E:line(fmt("%s.%s = %s.%s / %s;", sum, f, sum, f, E:lit(m))) end
    E:open("if (st)")
    E:line(fmt("*st = %s;", sum))
    E:close()
    E:open(fmt("if (!GRADC_ISFINITE(%s.objective))", sum))
    E:line("return GRADC_ENONFINITE;")
    E:close()
    return i
  end

  -- NAME_train_step: the loop, then one update per parameter
  local api = {}
  for _, inp in ipairs(A.inputs) do api[#api + 1] = inp.name end
  local E = new_ctx(A, g, {"p", "s", "st", "arena", "acc"}, api)
  update_values(A, E, g)
  local i = body(E, "acc", "train")
  for _, l in ipairs(E.pre) do E:line(l) end
  E.pre = nil
  local kind = g.opt.kind == "adam" and "adam_step" or "sgd_step"
  for _, pa in ipairs(A.params) do
    local pid = summed[pa.name]
    if pid then
      E:line(fmt("/* %s: the step on the mean of the micro-batches' gradients */", cfmt.comment(pa.name)))
      E:loop(i, pa.count, false)
      group.update(E, {op = kind, inputs = {pid}, operands = {{id = pid, name = pa.name}}},
        {{e = i, n = pa.count, w = 1}},
        fmt("acc->%s[%s] / %s", pa.member, i, E:lit(m)))
      E:close()
    end
  end
  E:line("s->step++;")
  E:line("return GRADC_OK;")
  local tsig = fmt("int %s_train_step(%s_params *p, %s_state *s, %s, %s_stats *st, void *arena)",
    P, P, P, decls, P)
  A.protos.train = tsig
  local tlines = cfmt.lines()
  tlines:add(tsig)
  tlines:add("{")
  tlines:append(E.out)
  tlines:add("}")

  -- NAME_grad: the loop into the caller's struct, the mean; zeros for the rest
  local G = new_ctx(A, g, {"p", "grad", "st", "arena"}, api)
  local gi = body(G, "grad", "grad")
  for _, pa in ipairs(A.params) do
    if summed[pa.name] then
      G:loop(gi, pa.count, true)
      G:line(fmt("grad->%s[%s] = grad->%s[%s] / %s;", pa.member, gi, pa.member, gi, G:lit(m)))
      G:close()
    else
      G:line(fmt("/* %s: %s */", pa.name, pa.frozen and "frozen, no gradient" or
        "does not reach the objective"))
      G:line(fmt("gradc_fill_%s(grad->%s, %d, 0.0);", A.f64 and "f64" or "f32", pa.member, pa.count))
    end
  end
  G:line("return GRADC_OK;")
  local gsig = fmt("int %s_grad(const %s_params *p, %s, %s_params *grad, %s_stats *st, void *arena)",
    P, P, decls, P, P)
  A.protos.grad = gsig
  local glines = cfmt.lines()
  glines:add(gsig)
  glines:add("{")
  glines:append(G.out)
  glines:add("}")
  return micro_fn, tlines, glines
end

------------------------------------------------------------------ plan

local MODE_TITLE = {infer = "inference", train = "training step", grad = "gradients"}

-- The buffer plan of graph g as a comment table.
local function plan_comment(A, g, out)
  out:add("")
  out:add(fmt("/* Buffer plan, %s: arena %d bytes (lower bound %d, %d without sharing).",
    MODE_TITLE[g.mode], g.arena_bytes, g.lower_bound, g.unshared_bytes))
  local rows = {{"buffer", "op", "shape", "offset", "bytes", "live"}}
  for _, n in ipairs(g.nodes) do
    if n.sto == "arena" then
      local K = {node = function(_, id) return g.nodes[id + 1] end}
      rows[#rows + 1] = {kernels.label(K, n.id), n.op, cfmt.comment(api.full_shape(n)),
        cfmt.int(n.offset), cfmt.int(n.bytes),
        fmt("%d..%d%s", n.first, n.last, n.alias >= 0 and fmt(" (in place of #%d)", n.alias) or "")}
    end
  end
  for _, n in ipairs(g.nodes) do
    if (n.scratch or 0) > 0 then
      local K = {node = function(_, id) return g.nodes[id + 1] end}
      local s = g.nodes[n.step + 1]
      rows[#rows + 1] = {fmt("scratch(%s)", kernels.label(K, n.id)), "pack",
        fmt("[%d,%d]", n.mm.k, n.mm.pack), cfmt.int(n.scratch_offset), cfmt.int(n.scratch),
        fmt("%d..%d", s.id, s.id)}
    end
  end
  if g.micro then  -- the sum of the micro-batches' gradients (fitbuild.c)
    rows[#rows + 1] = {"gradient sums", "params", "-", cfmt.int(g.micro_acc),
      cfmt.int(g.arena_bytes - g.micro_acc), "loop"}
  end
  if #rows == 1 then
    out:add(" * (no arena buffers) */")
    return
  end
  for _, l in ipairs(cfmt.table(rows, " *   ")) do out:add(cfmt.comment(l)) end
  out:add(" */")
end

------------------------------------------------------------------ entry

-- emit(model) -> NAME.h text, NAME.c text.
function M.emit(model)
  -- every elementwise op of ops.def (F_EW, emit.c's model.ew_ops) has its
  -- expression in group.lua's F: a new one is named here, not met mid-kernel
  for _, op in ipairs(model.ew_ops or {}) do
    if not group.formula[op] then
      error(fmt("group.lua: no formula for the elementwise op '%s' (ops.def F_EW): add F.%s",
        op, op), 0)
    end
  end
  local A = api.collect(model)
  local c = cfmt.lines()
  api.banner(A, c, "c")
  c:add(fmt("#include \"%s.h\"", A.prefix))
  c:add("GRADC_KERNEL_FILE")
  for _, g in ipairs(model.modes) do plan_comment(A, g, c) end
  api.globals(A, c)
  local bodies = {}
  for _, g in ipairs(model.modes) do
    local f
    if g.mode == "infer" and #g.out > 0 then f = gen_infer(A, g) end
    if g.micro then
      local mf, tf, gf = gen_micro(A, g)
      bodies[#bodies + 1] = {mode = "micro", lines = mf}
      bodies[#bodies + 1] = {mode = "train", lines = tf}
      bodies[#bodies + 1] = {mode = "grad", lines = gf}
    elseif g.mode == "train" then f = gen_train(A, g) end
    if g.mode == "grad" then f = gen_grad(A, g) end
    if f then bodies[#bodies + 1] = {mode = g.mode, lines = f} end
  end
  for _, b in ipairs(bodies) do
    c:add("")
    if b.mode == "micro" then
      c:add(fmt("/* One micro-batch (--fit): the gradients of its samples, for the loops of %s_train_step and %s_grad. */", A.prefix, A.prefix))
    else
      api.entry_comment(A, b.mode, c)
    end
    c:append(b.lines)
  end
  api.tail(A, c)
  local h = api.header(A)
  return h:text(), c:text()
end

return M
