-- cfmt_test.lua: unit tests of cfmt.lua (literals, names, comments, index
-- arithmetic), run by tests/test_emit.c.  Returns a list of {name, fn}.
local cfmt = require "cfmt"

local function eq(got, want, what)
  if got ~= want then
    error(string.format("%s: got %q, want %q", what or "value", tostring(got), tostring(want)), 2)
  end
end

local T = {}
local function test(name, fn) T[#T + 1] = {name, fn} end

test("literals round-trip with the fewest digits", function()
  eq(cfmt.lit(0.1, false), "0.1f")
  eq(cfmt.lit(1, false), "1.0f")
  eq(cfmt.lit(1e-4, false), "0.0001f")
  eq(cfmt.lit(5e-05, false), "5e-05f")
  eq(cfmt.lit(-2.5, false), "-2.5f")
  eq(cfmt.lit(0.1, true), "0.1")
  eq(cfmt.lit(1 / 3, true), "0.3333333333333333")
  eq(cfmt.lit(1 / 3, false), "0.33333334f")
  eq(cfmt.lit(-0.0, false), "-0.0f")
  eq(cfmt.lit(1e300, true), "1e+300")
  -- every f32 literal reads back as the float nearest the double
  for _, v in ipairs({0.1, 1 / 7, 123456.789, 1e-30, 3.4e38}) do
    local s = cfmt.lit(v, false)
    eq(cfmt.to_f32(tonumber(s:sub(1, -2))), cfmt.to_f32(v), "f32 round trip of " .. v)
  end
  -- a (folded) double beyond the float range is the float's infinity
  eq(cfmt.lit(1e39, false), "((float)(1e300 * 1e300))", "1e39 in f32")
  eq(cfmt.lit(-1e39, false), "(-((float)(1e300 * 1e300)))", "-1e39 in f32")
end)

test("names avoid keywords, the library and each other", function()
  local taken = {}
  eq(cfmt.cname("do", taken), "do_")
  eq(cfmt.cname("x", taken), "x")
  eq(cfmt.cname("x", taken), "x_")
  eq(cfmt.cname("expf", taken), "expf_")
  eq(cfmt.cname("_X", taken), "u_X")
  eq(cfmt.cname("gradc_w", taken), "ugradc_w")
  eq(cfmt.cname("GRADC_RT_H", taken), "uGRADC_RT_H")
  -- the model's own symbols and macros, C++ keywords, library macros
  eq(cfmt.cname("mlp_BATCH", taken, "mlp"), "umlp_BATCH")
  eq(cfmt.cname("mlp_arena", taken, "mlp"), "umlp_arena")
  eq(cfmt.cname("mlp2", taken, "mlp"), "mlp2")
  eq(cfmt.cname("class", taken), "class_")
  eq(cfmt.cname("EXIT_SUCCESS", taken), "uEXIT_SUCCESS")
  eq(cfmt.cname("INT8_MAX", taken), "uINT8_MAX")
  eq(cfmt.cname("W_t", taken), "W_t_")
  eq(cfmt.cname("a__b", taken), "a_u_b")
  eq(cfmt.cname("__z", taken), "u_u_z")
  -- a mangled name that is taken is mangled further, never reused
  eq(cfmt.cname("u_X", taken), "u_X_")
  eq(cfmt.cname("_X", taken), "u_X_u_")
end)

test("comment text cannot end the comment", function()
  eq(cfmt.comment("a */ b /* c ??= d\t"), "a * / b / * c ? ?= d?")
end)

test("offsets are affine in the loop variables", function()
  local vars = {{e = "i", n = 2, w = 4}, {e = "j", n = 4, w = 1}}
  eq(cfmt.offset(vars, {2, 4}, {4, 1}), "i * 4 + j", "contiguous")
  eq(cfmt.offset(vars, {2, 4}, {0, 1}), "j", "bias broadcast over the batch")
  eq(cfmt.offset(vars, {2, 4}, {1, 0}), "i", "per-sample scalar")
  eq(cfmt.offset(vars, {2, 4}, {0, 0}), "0", "scalar")
  eq(cfmt.offset(vars, {2, 4}, {1, 2}), "i + j * 2", "transposed")
  -- one loop over two merged dims
  eq(cfmt.offset({{e = "i", n = 8, w = 1}}, {2, 4}, {4, 1}), "i")
  -- one dim split over two loops
  eq(cfmt.offset(vars, {8}, {3}), "i * 12 + j * 3")
end)

test("offsets fall back to div/mod when loops and dims do not line up", function()
  local vars = {{e = "r", n = 2, w = 6}, {e = "c", n = 6, w = 1}}
  eq(cfmt.offset(vars, {3, 4}, {1, 0}), "((r * 6 + c) / 4)")
  eq(cfmt.offset(vars, {3, 4}, {0, 1}), "((r * 6 + c) % 4)")
end)

test("dimensions merge where every operand is contiguous", function()
  local D, S = cfmt.merge_dims({32, 1, 10}, {{10, 10, 1}, {0, 0, 1}})
  eq(#D, 2)
  eq(D[1], 32)
  eq(D[2], 10)
  eq(S[2][1], 0)
  D = cfmt.merge_dims({32, 10}, {{10, 1}, {10, 1}})
  eq(#D, 1)
  eq(D[1], 320)
end)

test("broadcast strides match ir.c's bcast_strides", function()
  local out = {shape = {2, 3}, batched = true}
  local s = cfmt.bcast(out, {shape = {3}, batched = false})
  eq(table.concat(s, ","), "0,0,1")
  s = cfmt.bcast(out, {shape = {2, 1}, batched = true})
  eq(table.concat(s, ","), "2,1,0")
end)

return T
