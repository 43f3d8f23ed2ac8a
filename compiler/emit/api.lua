-- api.lua: the generated API around the kernels.
--
-- collect() summarizes what the entry points expose (inputs, outputs,
-- parameters, tracked scalars, label class counts) from the graphs; the
-- other functions write the header (size macros, types, prototypes, and
-- the documentation of the API), the banner, the static arena, the
-- parameter table, initialization, save/load and baked parameters.
--
-- Declaration order (source order, never node ids, which the scheduler
-- may change), the inputs NAME_infer takes and the labels' class counts
-- come from C (compiler/api.c, handed over as model.api): the harnesses
-- gradc prints (run, train, the tests', the embedded runs') call the
-- entry points by the same rules.

local cfmt = require "cfmt"

local M = {}
local fmt = string.format

local function basename(path)
  return (path:match("([^/\\]+)$")) or path
end

function M.full_shape(n)
  local t = {}
  if n.batched then t[1] = "B" end
  for _, d in ipairs(n.shape) do t[#t + 1] = cfmt.int(d) end
  return "[" .. table.concat(t, ",") .. "]"
end

local function dims_product(shape)
  if #shape == 0 then return "1" end
  local t = {}
  for i, d in ipairs(shape) do t[i] = cfmt.int(d) end
  return table.concat(t, " * ")
end

------------------------------------------------------------------ collect

-- The API summary A: prefix, types, inputs, outputs, params, tracks.
function M.collect(model)
  local A = {
    model = model, prefix = model.name, T = model.name .. "_real", f64 = model.f64,
    batch = model.batch, file = basename(model.source or "model.nn"), protos = {},
    real_bytes = model.f64 and 8 or 4,
  }
  local modes = {}
  for _, g in ipairs(model.modes) do modes[g.mode] = g end
  A.modes = modes
  local infer = model.modes[1]
  A.training = modes.train ~= nil

  -- parameters and inputs in declaration order, which inputs inference
  -- takes and the labels' class counts: the API's rules, decided in C
  -- (api.c, model.api); the nodes from the inference graph (it keeps every
  -- leaf)
  local leaf = {}
  for _, n in ipairs(infer.nodes) do
    if n.op == "param" or n.op == "input" then leaf[n.op .. " " .. n.name] = n end
  end
  A.params, A.inputs = {}, {}
  for i, name in ipairs(model.api.params) do
    A.params[i] = {name = name, node = leaf["param " .. name]}
  end
  for i, e in ipairs(model.api.inputs) do
    A.inputs[i] = {name = e.name, node = leaf["input " .. e.name], classes = e.classes,
      infer = e.infer}
  end
  local members = {}
  for i, pa in ipairs(A.params) do
    local n = pa.node
    pa.index = i - 1
    pa.member = cfmt.cname(pa.name, members, A.prefix)
    pa.shape = n.shape
    pa.count = cfmt.numel(n.shape)
    pa.frozen = n.frozen
    pa.init, pa.init_arg = n.init, n.init_arg
    pa.ids = {}
    pa.node = nil
  end
  A.member = {}
  for _, pa in ipairs(A.params) do A.member[pa.name] = pa.member end
  for _, g in ipairs(model.modes) do
    local ids = {}
    for _, n in ipairs(g.nodes) do
      if n.op == "param" then ids[n.name] = n.id end
    end
    for _, pa in ipairs(A.params) do pa.ids[g.mode] = ids[pa.name] or -1 end
  end
  A.trainable = {}
  for _, pa in ipairs(A.params) do
    if not pa.frozen then A.trainable[#A.trainable + 1] = pa end
  end

  A.infer_inputs = {}
  for _, inp in ipairs(A.inputs) do
    local n = inp.node
    inp.int = n.type == "int"
    inp.size = cfmt.numel(n.shape)
    if inp.infer then A.infer_inputs[#A.infer_inputs + 1] = inp end
    inp.node = nil
  end

  -- outputs and tracks by the names their statements give (an alias names
  -- another name's node; one node may be listed under two names)
  A.outputs = {}
  for k, id in ipairs(infer.out) do
    local n = infer.nodes[id + 1]
    local name = (infer.out_name or {})[k] or n.name or ("out" .. k)
    A.outputs[k] = {name = name, size = cfmt.numel(n.shape)}
  end

  A.tracks = {}
  if modes.train then
    local g = modes.train
    local taken = {objective = true}
    for k, id in ipairs(g.track) do
      local n = g.nodes[id + 1]
      local name = (g.track_name or {})[k] or n.name or ("track" .. k)
      A.tracks[k] = {name = name, member = cfmt.cname(name, taken, A.prefix)}
    end
    A.opt = g.opt
  end
  A.values = {}
  for _, v in ipairs(model.values or {}) do A.values[v.name] = v.text end
  A.baked = model.params ~= nil and #(model.values or {}) > 0

  -- sizes
  A.arena_train = 0
  for _, m in ipairs({"train", "grad"}) do
    if modes[m] and modes[m].arena_bytes > A.arena_train then A.arena_train = modes[m].arena_bytes end
  end
  A.arena_infer = infer.arena_bytes
  A.params_bytes = 0
  for _, pa in ipairs(A.params) do A.params_bytes = A.params_bytes + pa.count * A.real_bytes end
  -- a model without parameters still has a (one-member) struct
  if #A.params == 0 then A.params_bytes = A.real_bytes end
  A.state_fields = M.state_fields(A)
  A.state_bytes = 0
  for _, f in ipairs(A.state_fields) do A.state_bytes = A.state_bytes + f.bytes end
  return A
end

-- The optimizer state, field by field, in struct order.  With f64 a
-- reserved int32 after 'step' keeps the struct free of padding on every
-- ABI, so NAME_STATE_BYTES is exact.
function M.state_fields(A)
  if not A.training then return {} end
  local T, f = A.T, {}
  f[#f + 1] = {decl = fmt("%s lr;", T), bytes = A.real_bytes, part = "&s->lr",
    doc = fmt("learning rate (the model's: %g); change it at any time", A.opt.lr)}
  f[#f + 1] = {decl = "int32_t step;", bytes = 4, part = "&s->step",
    doc = "optimizer steps taken"}
  if A.f64 then
    f[#f + 1] = {decl = "int32_t reserved;", bytes = 4, part = "&s->reserved",
      doc = "zero; keeps the layout free of padding"}
  end
  local prefixes = {}
  if A.opt.kind == "adam" then
    prefixes = {{"m", "Adam's first moment"}, {"v", "Adam's second moment"}}
  elseif A.opt.momentum ~= 0 then
    prefixes = {{"mom", "momentum buffer"}}
  end
  for _, pr in ipairs(prefixes) do
    for _, pa in ipairs(A.trainable) do
      local name = pr[1] .. "_" .. pa.member
      f[#f + 1] = {decl = fmt("%s %s[%s];", T, name, dims_product(pa.shape)),
        bytes = pa.count * A.real_bytes, part = "s->" .. name, array = name, count = pa.count,
        doc = fmt("%s of %s", pr[2], pa.name)}
    end
  end
  return f
end

------------------------------------------------------------------ text

-- The banner at the top of both files.
function M.banner(A, out, which)
  local m = A.model
  local fl = m.regenerate
  out:add(fmt("/* %s.%s: model '%s' (%s), generated by gradc %s -- do not edit.", A.prefix,
    which, cfmt.comment(m.model), cfmt.comment(A.file), m.version or "?"))
  out:add(" *")
  out:add(fmt(" * Regenerate: gradc compile %s -o DIR%s", cfmt.comment(m.source or A.file),
    fl ~= "" and " " .. cfmt.comment(fl) or ""))
  out:add(fmt(" * Batch %d, %s, %s.", A.batch, A.f64 and "double precision" or "single precision",
    m.fusion))
  out:add(" */")
end

------------------------------------------------------------------ header

local function size_macros(A, h)
  local P = A.prefix
  h:addf("#define %s_BATCH %d", P, A.batch)
  for _, inp in ipairs(A.inputs) do
    h:addf("#define %s_%s_SIZE %d /* input '%s', elements per sample%s */", P,
      inp.name:upper(), inp.size, inp.name, inp.int and ", an int32_t class label" or "")
  end
  for _, o in ipairs(A.outputs) do
    h:addf("#define %s_%s_SIZE %d /* output '%s', elements per sample */", P, o.name:upper(),
      o.size, o.name)
  end
  local labels = {}
  for _, inp in ipairs(A.inputs) do
    if inp.classes then
      labels[#labels + 1] = inp
      h:addf("#define %s_%s_CLASSES %d /* labels '%s' lie in [0, %d) */", P, inp.name:upper(),
        inp.classes, inp.name, inp.classes)
    end
  end
  -- (a label named n defines it already, with the same value)
  if #labels == 1 and labels[1].name:upper() ~= "N" then
    h:addf("#define %s_N_CLASSES %d", P, labels[1].classes)
  end
  h:addf("#define %s_N_PARAMS %d", P, #A.params)
  h:addf("#define %s_PARAMS_BYTES %d /* sizeof(%s_params) */", P, A.params_bytes, P)
  if A.training then
    h:addf("#define %s_STATE_BYTES %d /* sizeof(%s_state) */", P, A.state_bytes, P)
    h:addf("#define %s_ARENA_BYTES %d /* arena of %s_train_step and %s_grad */", P,
      A.arena_train, P, P)
  end
  if #A.outputs > 0 then
    h:addf("#define %s_INFER_ARENA_BYTES %d /* arena of %s_infer */", P, A.arena_infer, P)
  end
  if #A.params > 0 then
    h:addf("#define %s_PARAMS_BLOB_BYTES %d /* %s_save_params: the parameters alone */", P,
      64 + A.params_bytes, P)
  end
  if A.training then
    h:addf("#define %s_BLOB_BYTES %d /* %s_save of parameters and state */", P,
      64 + A.params_bytes + A.state_bytes, P)
  end
end

local function doc(A, h)
  local P = A.prefix
  local ins, allins = {}, {}
  for _, i in ipairs(A.infer_inputs) do ins[#ins + 1] = i.name end
  for _, i in ipairs(A.inputs) do allins[#allins + 1] = i.name end
  local outs = {}
  for _, o in ipairs(A.outputs) do outs[#outs + 1] = o.name end
  h:add("/* The API.  Every array is laid out sample by sample: input x of batch")
  h:addf(" * %s_BATCH holds %s_BATCH * %s_X_SIZE elements (row-major per sample).", P, P, P)
  h:add(" *")
  if not (A.model.infer_only and A.baked) then
    if A.baked then
      h:addf(" *   %s_init(&p, &s, seed)     parameters: %s_baked (--params), the others from", P, P)
      h:add(" *                             'seed'; optimizer state zeroed, s.lr = the model's")
    elseif A.training then
      h:addf(" *   %s_init(&p, &s, seed)     parameters from 'seed' (stream = parameter index),", P)
      h:add(" *                             optimizer state zeroed, s.lr = the model's")
    else
      h:addf(" *   %s_init(&p, seed)         parameters from 'seed' (stream = parameter index)", P)
    end
  end
  if #A.outputs > 0 then
    h:addf(" *   %s_infer(&p, %s, arena)", P, table.concat(ins, ", ") ..
      (#ins > 0 and ", " or "") .. table.concat(outs, ", "))
    h:add(" *                             outputs only; p may be const (in flash)")
  end
  if A.training then
    h:addf(" *   %s_train_step(&p, &s, %s, &st, arena)", P, table.concat(allins, ", "))
    h:add(" *                             forward, backward and one optimizer step;")
    h:add(" *                             st (may be NULL) gets the batch means")
    h:addf(" *   %s_grad(&p, %s, &grad, &st, arena)", P, table.concat(allins, ", "))
    h:add(" *                             the gradient of the objective in 'grad' (frozen")
    h:add(" *                             parameters: 0), nothing updated")
    h:addf(" *   %s_save / %s_load           parameters and state to/from bytes, with a", P, P)
    h:add(" *                             layout hash and a CRC (GRADC_EBLOB if corrupt,")
    h:add(" *                             GRADC_ELAYOUT if of another model or layout)")
  end
  if #A.params > 0 then
    h:addf(" *   %s_save_params / %s_load_params", P, P)
    h:add(" *                             the parameters alone (weights to ship); loads")
    h:add(" *                             the parameters of either kind of blob")
  end
  h:add(" *")
  h:add(" * Status: GRADC_OK; GRADC_EBADLABEL if a class label is outside [0, classes)")
  h:add(" * (checked before anything runs); GRADC_ENONFINITE if the objective is NaN")
  h:add(" * or infinite (checked after the forward pass, before any update; st is")
  h:add(" * filled).  After an error the parameters and the state are bit-identical.")
  h:add(" *")
  h:addf(" * Arena: NULL uses the static %s_arena (so calls on it are not reentrant);", P)
  h:addf(" * or pass %s_ARENA_BYTES (training, gradients) or %s_INFER_ARENA_BYTES", P, P)
  h:addf(" * (inference) bytes aligned to %d (at least to sizeof(%s)).", A.model.align or 64, A.T)
  h:addf(" * -D%s_NO_STATIC_ARENA (or -DGRADC_NO_STATIC_ARENA for every model) leaves", P)
  h:add(" * the static arena out; a NULL arena then returns GRADC_ENOARENA.")
  h:add(" */")
end

function M.header(A)
  local P, T = A.prefix, A.T
  local h = cfmt.lines()
  M.banner(A, h, "h")
  local guard = P .. "_H"
  cfmt.header_open(h, guard, {"<stddef.h>", "<stdint.h>", '"gradc_rt.h"'})
  doc(A, h)
  h:add("")
  size_macros(A, h)
  h:add("")
  h:addf("typedef %s %s;", A.f64 and "double" or "float", T)
  h:add("")
  h:add("/* The parameters, in declaration order. */")
  h:addf("typedef struct %s_params {", P)
  if #A.params == 0 then h:addf("\t%s unused; /* the model has no parameters */", T) end
  for _, pa in ipairs(A.params) do
    local init = pa.init or "?"
    h:addf("\t%s %s[%s]; /* %s ~ %s%s */", T, pa.member, dims_product(pa.shape),
      cfmt.comment(cfmt.shape(pa.shape)), init, pa.frozen and ", frozen" or "")
  end
  h:addf("} %s_params;", P)
  if A.training then
    h:add("")
    h:addf("/* The optimizer: %s. */", M.opt_text(A))
    h:addf("typedef struct %s_state {", P)
    for _, f in ipairs(A.state_fields) do h:addf("\t%s /* %s */", f.decl, cfmt.comment(f.doc)) end
    h:addf("} %s_state;", P)
    h:add("")
    h:add("/* Batch means reported by a training step or a gradient call. */")
    h:addf("typedef struct %s_stats {", P)
    h:addf("\t%s objective; /* the objective minimized */", T)
    for _, t in ipairs(A.tracks) do h:addf("\t%s %s; /* track %s */", T, t.member, t.name) end
    h:addf("} %s_stats;", P)
  end
  local table_too = not (A.model.infer_only and A.baked)
  if table_too then
    h:add("")
    h:add("/* One row per parameter; the values lie at (char *)p + offset. */")
    h:addf("typedef struct %s_param_info {", P)
    h:add("\tconst char *name;")
    h:add("\tint32_t rank;")
    h:add("\tint32_t shape[4];")
    h:add("\tint32_t count;     /* elements */")
    h:add("\tsize_t offset;     /* bytes from the start of the params struct */")
    h:add("\tint32_t trainable; /* 0: frozen */")
    h:addf("} %s_param_info;", P)
    h:addf("extern const %s_param_info %s_param_table[];", P, P)
    h:addf("/* A pointer to the values of parameter i (a row of %s_param_table). */", P)
    h:addf("%s *%s_param_values(%s_params *p, int i);", T, P, P)
  end
  h:add("")
  h:addf("/* The arena used when a function gets arena == NULL. */")
  h:addf("#if !defined(GRADC_NO_STATIC_ARENA) && !defined(%s_NO_STATIC_ARENA)", P)
  h:addf("extern unsigned char %s_arena[];", P)
  h:add("#endif")
  if A.baked then
    h:addf("/* The parameters of %s, baked in (const: flash on a device). */", A.model.params)
    h:addf("extern const %s_params %s_baked;", P, P)
  end
  h:add("")
  if table_too then
    if A.training then
      h:addf("void %s_init(%s_params *p, %s_state *s, uint32_t seed);", P, P, P)
    else
      h:addf("void %s_init(%s_params *p, uint32_t seed);", P, P)
    end
  end
  for _, k in ipairs({"infer", "train", "grad"}) do
    if A.protos[k] then h:add(A.protos[k] .. ";") end
  end
  if #A.params > 0 then
    h:addf("size_t %s_save_params(const %s_params *p, void *buf, size_t cap);", P, P)
    h:addf("int %s_load_params(%s_params *p, const void *buf, size_t n);", P, P)
  end
  if A.training then
    h:addf("size_t %s_save(const %s_params *p, const %s_state *s, void *buf, size_t cap);", P, P, P)
    h:addf("int %s_load(%s_params *p, %s_state *s, const void *buf, size_t n);", P, P, P)
  end
  h:add("")
  cfmt.header_close(h, guard)
  return h
end

function M.opt_text(A)
  local o = A.opt
  if o.kind == "adam" then
    return fmt("adam(lr = %g, beta1 = %g, beta2 = %g, eps = %g, weight_decay = %g)", o.lr,
      o.beta1, o.beta2, o.eps, o.weight_decay)
  end
  return fmt("sgd(lr = %g, momentum = %g, weight_decay = %g)", o.lr, o.momentum,
    o.weight_decay)
end

------------------------------------------------------------------ .c parts

-- The layout strings whose hashes a blob carries: the model's name (not
-- the --name prefix, so that builds of one model of other batch sizes or
-- names share blobs), dtype, parameters, then (all = true) the state.
local function layout_string(A, all)
  local t = {"gradc", A.model.model_name or A.model.model, A.f64 and "f64" or "f32", "params"}
  for _, pa in ipairs(A.params) do t[#t + 1] = pa.name .. cfmt.shape(pa.shape) end
  if all then
    t[#t + 1] = "state"
    for _, f in ipairs(A.state_fields) do
      t[#t + 1] = (f.decl:gsub(";$", ""):gsub("^" .. A.T .. " ", "real "))
    end
  end
  return table.concat(t, " ")
end

-- (fan_in, fan_out) as PyTorch's _calculate_fan_in_and_fan_out for a
-- weight [out, in, ...]; a vector counts as [n] both ways, a scalar as 1.
local function fans(shape)
  if #shape == 0 then return 1, 1 end
  if #shape == 1 then return shape[1], shape[1] end
  local rf = 1
  for i = 3, #shape do rf = rf * shape[i] end
  return shape[2] * rf, shape[1] * rf
end

-- The initializer call(s) of parameter pa; 'rng' the rng variable.
local function init_lines(A, pa, rng, out)
  local sfx = A.f64 and "f64" or "f32"
  local dst, n = "p->" .. pa.member, pa.count
  local a = pa.init_arg or {0, 0}
  local d = function(v) return cfmt.lit(v, true) end
  local init = pa.init
  if A.values[pa.name] then
    out:addf("\t/* %s: the baked values (--params) */", pa.name)
    out:addf("\tfor (int i = 0; i < %d; i++) {", n)
    out:addf("\t\t%s[i] = %s_baked.%s[i];", dst, A.prefix, pa.member)
    out:add("\t}")
    return false
  end
  local fi, fo = fans(pa.shape)
  if init == "zeros" or init == "ones" or init == "constant" then
    local v = init == "zeros" and 0 or init == "ones" and 1 or a[1]
    out:addf("\t/* %s %s ~ %s */", pa.name, cfmt.shape(pa.shape), init)
    out:addf("\tgradc_fill_%s(%s, %d, %s);", sfx, dst, n, d(v))
    return false
  end
  out:addf("\tgradc_rng_seed(&%s, seed, %d);", rng, pa.index)
  if init == "normal" then
    out:addf("\t/* %s %s ~ normal(%g, %g) */", pa.name, cfmt.shape(pa.shape), a[1], a[2])
    out:addf("\tgradc_normal_%s(%s, %d, %s, %s, &%s);", sfx, dst, n, d(a[1]), d(a[2]), rng)
  elseif init == "uniform" then
    out:addf("\t/* %s %s ~ uniform(%g, %g) */", pa.name, cfmt.shape(pa.shape), a[1], a[2])
    out:addf("\tgradc_uniform_%s(%s, %d, %s, %s, &%s);", sfx, dst, n, d(a[1]), d(a[2]), rng)
  elseif init == "xavier" then
    local bound = math.sqrt(3.0) * math.sqrt(2.0 / (fi + fo))
    out:addf("\t/* %s %s ~ xavier: uniform(-b, b), b = sqrt(6 / (%d + %d)) */", pa.name,
      cfmt.shape(pa.shape), fi, fo)
    out:addf("\tgradc_uniform_%s(%s, %d, %s, %s, &%s);", sfx, dst, n, d(-bound), d(bound), rng)
  elseif init == "he" then
    local std = math.sqrt(2.0) / math.sqrt(fi)
    out:addf("\t/* %s %s ~ he: normal(0, sqrt(2 / %d)) */", pa.name, cfmt.shape(pa.shape), fi)
    out:addf("\tgradc_normal_%s(%s, %d, 0.0, %s, &%s);", sfx, dst, n, d(std), rng)
  else
    error("api.lua: unknown initializer " .. tostring(init), 0)
  end
  return true
end

local function init_function(A, c)
  local P = A.prefix
  c:add("")
  c:add("/* Parameters from 'seed': parameter i draws from PCG32 stream i, so each")
  c:add(" * value is bit-identical on every platform and independent of the others. */")
  if A.training then
    c:addf("void %s_init(%s_params *p, %s_state *s, uint32_t seed)", P, P, P)
  else
    c:addf("void %s_init(%s_params *p, uint32_t seed)", P, P)
  end
  c:add("{")
  local body = cfmt.lines()
  local rng = "rng"
  local uses = false
  for _, pa in ipairs(A.params) do
    if init_lines(A, pa, rng, body) then uses = true end
  end
  if uses then c:add("\tgradc_rng rng;") else c:add("\t(void)seed;") end
  if #A.params == 0 then c:add("\t(void)p;") end
  c:append(body)
  if A.training then
    c:add("\tif (!s)")
    c:add("\t\treturn;")
    c:addf("\ts->lr = %s;", cfmt.lit(A.opt.lr, A.f64))
    c:add("\ts->step = 0;")
    for _, f in ipairs(A.state_fields) do
      if f.array then
        c:addf("\tgradc_fill_%s(s->%s, %d, 0.0);", A.f64 and "f64" or "f32", f.array, f.count)
      elseif f.decl:match("reserved") then
        c:add("\ts->reserved = 0;")
      end
    end
  end
  c:add("}")
end

local function table_function(A, c)
  local P = A.prefix
  c:add("")
  c:addf("const %s_param_info %s_param_table[] = {", P, P)
  for _, pa in ipairs(A.params) do
    local s = {}
    for i = 1, 4 do s[i] = cfmt.int(pa.shape[i] or 0) end
    c:addf("\t{\"%s\", %d, {%s}, %d, offsetof(%s_params, %s), %d},", pa.name, #pa.shape,
      table.concat(s, ", "), pa.count, P, pa.member, pa.frozen and 0 or 1)
  end
  if #A.params == 0 then c:add("\t{0, 0, {0, 0, 0, 0}, 0, 0, 0}") end
  c:add("};")
  c:add("")
  c:addf("%s *%s_param_values(%s_params *p, int i)", A.T, P, P)
  c:add("{")
  c:addf("\treturn (%s *)(void *)((char *)p + %s_param_table[i].offset);", A.T, P)
  c:add("}")
end

-- Layout string, arena, helpers, parameter table and init: what comes
-- before the entry points.
function M.globals(A, c)
  local P = A.prefix
  local arena = math.max(A.arena_train, A.arena_infer, 1)
  c:add("")
  c:addf("/* The static arena: the largest of the entry points' (%d bytes), unless", arena)
  c:add(" * left out (a NULL arena then returns GRADC_ENOARENA). */")
  c:addf("#if !defined(GRADC_NO_STATIC_ARENA) && !defined(%s_NO_STATIC_ARENA)", P)
  c:add("#if defined(__GNUC__) || defined(__clang__)")
  c:addf("unsigned char %s_arena[%d] __attribute__((aligned(%d)));", P, arena,
    A.model.align or 64)
  c:add("#else")
  c:addf("unsigned char %s_arena[%d];", P, arena)
  c:add("#endif")
  c:addf("#define %s_STATIC_ARENA_ %s_arena", P, P)
  c:add("#else")
  c:addf("#define %s_STATIC_ARENA_ ((unsigned char *)0)", P)
  c:add("#endif")
  c:add("")
  c:addf("/* sizes the header promises */")
  c:addf("typedef char %s_check_params[sizeof(%s_params) == %s_PARAMS_BYTES ? 1 : -1];", P, P, P)
  if A.training then
    c:addf("typedef char %s_check_state[sizeof(%s_state) == %s_STATE_BYTES ? 1 : -1];", P, P, P)
  end
  if A.training and A.opt.kind == "adam" then
    c:add("")
    c:add("/* x^n by squaring (n >= 0), for Adam's bias corrections. */")
    c:addf("static double %s_powi(double x, int32_t n)", P)
    c:add("{")
    c:add("\tdouble r = 1.0;")
    c:add("\twhile (n > 0) {")
    c:add("\t\tif (n & 1)")
    c:add("\t\t\tr *= x;")
    c:add("\t\tx *= x;")
    c:add("\t\tn >>= 1;")
    c:add("\t}")
    c:add("\treturn r;")
    c:add("}")
  end
  if not (A.model.infer_only and A.baked) then
    table_function(A, c)
    init_function(A, c)
  end
end

local ENTRY_DOC = {
  infer = "Inference: the outputs of a batch.",
  train = "One training step: forward, backward, and the optimizer update of every\n * trainable parameter as soon as its gradient is complete.",
  grad = "The gradient of the batch-mean objective, without any update.",
}

function M.entry_comment(A, mode, c)
  c:add("/* " .. ENTRY_DOC[mode] .. " */")
end

local function baked(A, c)
  local P = A.prefix
  c:add("")
  c:addf("const %s_params %s_baked = {", P, P)
  for _, pa in ipairs(A.params) do
    local v = A.values[pa.name]
    c:addf("\t/* %s %s */", pa.name, cfmt.shape(pa.shape))
    if not v then
      c:add("\t{0},")
    else
      c:add("\t{")
      c:add(v) -- the rows, exact hexadecimal literals (bake.c)
      c:add("\t},")
    end
  end
  if #A.params == 0 then c:add("\t0") end
  c:add("};")
end

-- NAME_save_params / NAME_load_params (every build with parameters), and
-- NAME_save / NAME_load with the optimizer state (training builds).
local function save_load(A, c)
  local P = A.prefix
  local parts, sizes = {}, {}
  for _, pa in ipairs(A.params) do
    parts[#parts + 1] = "p->" .. pa.member
    sizes[#sizes + 1] = fmt("sizeof(%s) * %d", A.T, pa.count)
  end
  local np = #parts
  if A.training then
    for _, f in ipairs(A.state_fields) do
      parts[#parts + 1] = f.part
      sizes[#sizes + 1] = f.array and fmt("sizeof(%s) * %d", A.T, f.count) or
        (f.decl:match("^int32_t") and "sizeof(int32_t)" or fmt("sizeof(%s)", A.T))
    end
  end
  local n = #parts
  local model = cfmt.comment(A.model.model_name or A.model.model)
  c:add("")
  c:add("/* The blob layouts: their hashes guard against loading another model's blob. */")
  c:addf("static const char %s_params_layout[] = \"%s\";", P, cfmt.comment(layout_string(A, false)))
  if A.training then
    c:addf("static const char %s_layout[] = \"%s\";", P, cfmt.comment(layout_string(A, true)))
  end
  c:addf("static const size_t %s_part_bytes[%d] = {", P, n)
  for _, s in ipairs(sizes) do c:addf("\t%s,", s) end
  c:add("};")
  -- one save and one load function; 'k' parts, 'all' with the state
  local function pair(k, all)
    local sfx = all and "" or "_params"
    local sarg = all and fmt(", const %s_state *s", P) or ""
    local larg = all and fmt(", %s_state *s", P) or ""
    local lay = fmt("\tconst gradc_blob_layout lay = {\"%s\", gradc_fnv1a(%s_%slayout), " ..
      "gradc_fnv1a(%s_params_layout), %s_PARAMS_BYTES};", model, P, all and "" or "params_", P, P)
    c:add("")
    c:addf("/* %s into buf[0..cap); the bytes written, 0 if cap is too small. */",
      all and "Parameters and state" or "The parameters alone (no optimizer state)")
    c:addf("size_t %s_save%s(const %s_params *p%s, void *buf, size_t cap)", P, sfx, P, sarg)
    c:add("{")
    c:add(lay)
    c:addf("\tconst void *const parts[%d] = {", k)
    for i = 1, k do c:addf("\t\t%s,", parts[i]) end
    c:add("\t};")
    c:addf("\treturn gradc_blob_write(buf, cap, &lay, parts, %s_part_bytes, %d);", P, k)
    c:add("}")
    c:add("")
    if all then
      c:addf("/* Parameters and state from a blob of %s_save; GRADC_EBLOB if it is", P)
      c:add(" * truncated or corrupt, GRADC_ELAYOUT if it is of another model or layout")
      c:add(" * (gradc_blob_why says which); nothing changes then. */")
    else
      c:addf("/* The parameters from a blob of %s_save_params or %s_save (its state", P, P)
      c:add(" * skipped) of any build of this model; GRADC_EBLOB, GRADC_ELAYOUT as")
      c:addf(" * %s_load. */", P)
    end
    c:addf("int %s_load%s(%s_params *p%s, const void *buf, size_t n)", P, sfx, P, larg)
    c:add("{")
    c:add(lay)
    c:addf("\tvoid *const parts[%d] = {", k)
    for i = 1, k do c:addf("\t\t%s,", parts[i]) end
    c:add("\t};")
    c:addf("\treturn gradc_blob_read(buf, n, &lay, parts, %s_part_bytes, %d);", P, k)
    c:add("}")
  end
  if np > 0 then pair(np, false) end
  if A.training then pair(n, true) end
end

-- What comes after the entry points: save/load, baked values.
function M.tail(A, c)
  if A.training or #A.params > 0 then save_load(A, c) end
  if A.baked then baked(A, c) end
end

return M
