-- emitter_test.lua: the emitter on hand-made graphs (plain tables, as
-- emit.c builds them), run by tests/test_emit.c.  Returns {name, fn} pairs.
local emitter = require "emitter"
local cfmt = require "cfmt"

local T = {}
local function test(name, fn) T[#T + 1] = {name, fn} end

local function has(text, s)
  if not text:find(s, 1, true) then
    error(string.format("missing %q in:\n%s", s, text), 2)
  end
end

local function hasnt(text, s)
  if text:find(s, 1, true) then error(string.format("unexpected %q", s), 2) end
end

-- A node with the defaults of emit.c's tables.
local function node(t)
  t.kind = t.kind or "other"
  if t.ew == nil then t.ew = t.kind == "unary" or t.kind == "binary" or t.kind == "grad" end
  t.update = t.update or t.op == "sgd_step" or t.op == "adam_step"
  if t.contract == nil then t.contract = t.op == "matmul" end  -- F_CONTRACT (emit.c)
  t.shape = t.shape or {}
  t.inputs = t.inputs or {}
  t.attr = t.attr or {0, 0}
  t.type = t.type or "f"
  t.fuse = t.fuse or -1
  t.n_use = t.n_use or 1
  t.sto = t.sto or "arena"
  t.offset, t.bytes = t.offset or 0, t.bytes or 64
  t.first, t.last, t.alias = t.first or t.id, t.last or t.id, t.alias or -1
  t.line, t.col = t.line or 0, t.col or 0
  return t
end

-- Each node's operand records, as emit.c's push_operands makes them (the
-- kernels read no other node's table).
local function operands(nodes)
  for _, n in ipairs(nodes) do
    n.operands = {}
    for k, id in ipairs(n.inputs) do
      local x = nodes[id + 1]
      local lit = x.op == "const" or x.op == "fill"
      n.operands[k] = {id = id, lit = lit and x.attr[1] or nil, shape = x.shape,
        batched = x.batched, full = cfmt.full(x, 2), bcast = n.bcast and n.bcast[k] or cfmt.bcast(n, x),
        int = x.type == "int", label = lit and string.format("%g", x.attr[1]) or x.name or
        (x.op .. "#" .. id), name = x.name, clobber = x.clobber or -1}
    end
  end
end

-- h = relu(W @ x + b) over a batch of 2, as one inference graph; 'fuse'
-- decides whether the product and the add run in the relu's loop, 'mm'
-- overrides the product's layout.
local function tiny(fuse, mm, n)
  n = n or 4
  local nodes = {
    node{id = 0, op = "input", kind = "leaf", name = "x", shape = {3}, batched = true, sto = "input", line = 3},
    node{id = 1, op = "param", kind = "leaf", name = "W", shape = {n, 3}, sto = "param",
      init = "he", init_arg = {0, 0}, frozen = false, line = 4},
    node{id = 2, op = "param", kind = "leaf", name = "b", shape = {n}, sto = "param",
      init = "zeros", init_arg = {0, 0}, frozen = false, line = 5},
    node{id = 3, op = "matmul", name = "z", shape = {n}, batched = true, inputs = {0, 1},
      mm = mm or {m = 2, n = n, k = 3, ta = false, tb = true, nb = 1, sl = 0, sr = 0, sc = 0, acc = false},
      fuse = fuse and 4 or -1, sto = fuse and "none" or "arena", offset = 0, line = 7, text = "z = W @ x"},
    node{id = 4, op = "add", kind = "binary", shape = {n}, batched = true, inputs = {3, 2},
      bcast = {{n, 1}, {0, 1}}, fuse = fuse and 5 or -1, sto = fuse and "none" or "arena",
      offset = fuse and 0 or 64, line = 8, text = "h = relu(z + b)",
      loops = not fuse and {2, n} or nil, unroll = true},  -- kernel.c's loop nest (b broadcast)
    node{id = 5, op = "relu", kind = "unary", name = "h", shape = {n}, batched = true,
      inputs = {4}, bcast = {{n, 1}}, sto = "output", line = 8, text = "h = relu(z + b)",
      members = fuse and {3, 4} or nil,  -- emit.c lists a root's fused nodes
      loops = not fuse and {2 * n} or nil, unroll = false},
  }
  operands(nodes)
  return {
    name = "tiny", model = "tiny", source = "tiny.nn", version = "test", batch = 2,
    f64 = false, infer_only = true, align = 64,
    regenerate = fuse and "--infer-only" or "--infer-only --no-fuse",
    fusion = fuse and "elementwise chains fused into their producers"
      or "no fusion (one loop nest per graph node)",
    target = {name = "portable", vec_bytes = 64, vec_regs = 32, stack_bytes = 4096, align = 64,
      fma = true, int8_dot = false},
    values = {},
    -- the API's rules, decided in C (api.c): declaration order, what
    -- inference takes, label classes
    api = {inputs = {{name = "x", infer = true}}, params = {"W", "b"}},
    modes = {{mode = "infer", batch = 2, loss = -1, objective = -1, out = {5}, track = {},
      track_mean = {}, arena_bytes = 128, lower_bound = 128, unshared_bytes = 128,
      opt = {kind = "sgd", lr = 0.1, momentum = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8,
        weight_decay = 0, line = 0},
      nodes = nodes}},
  }
end

test("a fused matmul + bias + relu is one loop nest", function()
  local h, c = emitter.emit(tiny(true))
  has(c, "acc += x[i * 3 + k] * p->W[j * 3 + k];")
  has(c, "const tiny_real t4 = acc + p->b[j];")
  has(c, "h[i * 4 + j] = t4 < 0 ? 0.0f : t4;")
  has(c, "/* z = x @ W^T   [B,3] x [4,3] -> [B,4]   (tiny.nn:7: z = W @ x)   [fused]")
  has(c, "int tiny_infer(const tiny_params *p, const tiny_real *x, tiny_real *h, void *arena)")
  has(c, "(void)arena;")
  has(h, "#define tiny_X_SIZE 3")
  has(h, "#define tiny_H_SIZE 4")
  has(h, "typedef float tiny_real;")
  has(h, "tiny_real W[4 * 3];")
  hasnt(c, "unsigned char *mem")
end)

test("unfused, every node is its own loop through the arena", function()
  local _, c = emitter.emit(tiny(false))
  has(c, "tiny_real *z = (tiny_real *)(void *)(mem + 0);")
  has(c, "z[i * 4 + j] = acc;")
  has(c, "t4[i * 4 + j] = z[i * 4 + j] + p->b[j];")
  has(c, "h[i] = t4[i] < 0 ? 0.0f : t4[i];")
end)

test("a product with R not transposed gets row blocks and a tail", function()
  local mm = {m = 2, n = 20, k = 3, ta = false, tb = false, nb = 1, sl = 0, sr = 0, sc = 0, acc = false}
  local _, c = emitter.emit(tiny(true, mm, 20))
  has(c, "for (int j0 = 0; j0 < 16; j0 += 16) {")
  has(c, "acc[jj] += a * p->W[k * 20 + (j0 + jj)];")
  has(c, "tiny_real acc[4];")
  has(c, "acc[jj] += a * p->W[k * 20 + (16 + jj)];")
  has(c, "const tiny_real t4 = acc[jj] + p->b[(16 + jj)];")
end)

test("f64 builds use double and the double math", function()
  local m = tiny(true)
  m.f64 = true
  local h, c = emitter.emit(m)
  has(h, "typedef double tiny_real;")
  has(c, "h[i * 4 + j] = t4 < 0 ? 0.0 : t4;")
end)

test("output is byte-identical from run to run", function()
  local h1, c1 = emitter.emit(tiny(true))
  local h2, c2 = emitter.emit(tiny(true))
  assert(h1 == h2 and c1 == c2, "two runs differ")
end)

test("an elementwise op of ops.def without a formula in group.lua is named", function()
  local m = tiny(true)
  m.ew_ops = {"relu", "softplus"}  -- emit.c lists every F_EW op
  local ok, err = pcall(emitter.emit, m)
  assert(not ok, "no error")
  has(err, "no formula for the elementwise op 'softplus' (ops.def F_EW): add F.softplus")
end)

return T
