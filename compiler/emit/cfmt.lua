-- cfmt.lua: small helpers for writing C text.
--
-- Literals that round-trip (the shortest decimal that reads back as the
-- same float or double), C names that cannot collide with keywords or the
-- library, comment text that cannot end a comment, and index arithmetic:
-- the offset of a (possibly broadcast) operand as an affine expression of
-- the loop variables, with a div/mod fallback when the loops and the
-- operand's dimensions do not line up.
--
-- Everything here is a pure function of its arguments.

local M = {}

local fmt, concat = string.format, table.concat

------------------------------------------------------------------ literals

-- v rounded to binary32, as a Lua float.
local function to_f32(v)
  return (string.unpack("<f", string.pack("<f", v)))
end
M.to_f32 = to_f32

-- The shortest "%.Ng" text of v that reads back as 'target' under 'round'.
local function shortest(v, round, target)
  for p = 1, 17 do
    local s = fmt("%." .. p .. "g", v)
    if round(tonumber(s)) == target then return s end
  end
  return fmt("%.17g", v)
end

-- A C literal of value v: "0.1f" (f32) or "0.1" (f64).  Infinities and
-- NaN (a folded log(0), say) become constant expressions.
function M.lit(v, f64)
  if v ~= v then return f64 and "(0.0 / 0.0)" or "(0.0f / 0.0f)" end
  if v == math.huge or v == -math.huge then
    local s = f64 and "(1e300 * 1e300)" or "((float)(1e300 * 1e300))"
    return v < 0 and "(-" .. s .. ")" or s
  end
  local s
  if f64 then
    s = shortest(v, function(x) return x end, v)
  else
    local f = to_f32(v)
    -- a folded value beyond the float range (1e38 * 10): the infinity the
    -- float arithmetic gives (literals as written are checked by parse.c)
    if f == math.huge or f == -math.huge then return M.lit(f, false) end
    s = shortest(f, to_f32, f)
  end
  if v == 0 and 1 / v < 0 then s = "-0" end
  if not s:find("[%.eEn]") then s = s .. ".0" end
  return f64 and s or s .. "f"
end

-- An integer literal (sizes, offsets, strides).
function M.int(v)
  return fmt("%d", v)
end

------------------------------------------------------------------ names

-- The names the generated code can collide with, besides its own: the
-- keywords of C (C89 to C23) and of C++ (the header is C++-includable),
-- and every identifier the headers it includes (stddef.h, stdint.h,
-- string.h, math.h; stdio.h and stdlib.h in the harness of `gradc run`)
-- declare or define, with their reserved name patterns (hazard below).
local keywords = {}
for w in ([[auto break case char const continue default do double else enum
  extern float for goto if inline int long register restrict return short
  signed sizeof static struct switch typedef union unsigned void volatile
  while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic
  _Noreturn _Static_assert _Thread_local asm typeof typeof_unqual bool true
  false nullptr constexpr alignas alignof static_assert thread_local
  and and_eq bitand bitor catch char8_t char16_t char32_t class compl concept
  consteval constinit const_cast co_await co_return co_yield decltype delete
  dynamic_cast explicit export friend mutable namespace new noexcept not
  not_eq operator or or_eq private protected public reinterpret_cast requires
  static_cast template this throw try typeid typename using virtual wchar_t
  xor xor_eq import module
  NULL main errno assert offsetof size_t ptrdiff_t max_align_t
  int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t
  intptr_t uintptr_t intmax_t uintmax_t
  acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2
  expm1 frexp ilogb ldexp log log10 log1p log2 logb modf scalbn scalbln cbrt
  fabs hypot pow sqrt erf erfc lgamma tgamma ceil floor nearbyint rint lrint
  llrint round lround llround trunc fmod remainder remquo copysign nan
  nextafter nexttoward fdim fmax fmin fma abs labs llabs div ldiv lldiv
  memcpy memmove memset memcmp memchr strlen strcpy strncpy strcat strncat
  strcmp strncmp strchr strrchr strstr strtok strerror strspn strcspn strpbrk
  strcoll strxfrm strdup strndup
  stdin stdout stderr fopen fclose fread fwrite fputs fputc fgets fgetc
  printf fprintf sprintf snprintf puts putchar getchar fseek ftell rewind
  fflush remove rename tmpfile tmpnam perror feof ferror clearerr setbuf
  setvbuf scanf fscanf sscanf ungetc getc putc vprintf vfprintf vsprintf
  vsnprintf fgetpos fsetpos FILE fpos_t
  malloc calloc realloc free exit abort atexit at_quick_exit quick_exit _Exit
  getenv system qsort bsearch rand srand atoi atol atoll atof strtod strtof
  strtold strtol strtoll strtoul strtoull mblen mbtowc wctomb mbstowcs
  wcstombs aligned_alloc div_t ldiv_t lldiv_t
  EOF BUFSIZ FILENAME_MAX FOPEN_MAX L_tmpnam TMP_MAX P_tmpdir L_ctermid
  RAND_MAX MB_CUR_MAX INFINITY NAN HUGE_VAL HUGE_VALF HUGE_VALL
  math_errhandling float_t double_t]]):gmatch("%S+") do
  keywords[w] = true
end
-- math.h's float and long double functions (expf, logl, ...), and its macros
for w in ([[acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh
  exp exp2 expm1 frexp ilogb ldexp log log10 log1p log2 logb modf scalbn
  scalbln cbrt fabs hypot pow sqrt erf erfc lgamma tgamma ceil floor
  nearbyint rint lrint llrint round lround llround trunc fmod remainder
  remquo copysign nan nextafter nexttoward fdim fmax fmin fma]]):gmatch("%S+") do
  keywords[w .. "f"] = true
  keywords[w .. "l"] = true
end
for w in ([[fpclassify isfinite isinf isnan isnormal signbit isgreater
  isgreaterequal isless islessequal islessgreater isunordered]]):gmatch("%S+") do
  keywords[w] = true
end
M.keywords = keywords

-- Reserved patterns of C and POSIX, and gradc's own: a name matching one
-- may be (or become) a macro or a library name.
local hazard_patterns = {
  "^_",                          -- reserved at file scope, or always
  "__",                          -- reserved in C++
  "^[Gg][Rr][Aa][Dd][Cc]",       -- gradc's runtime: gradc_*, GRADC_*
  "^E[0-9A-Z]",                  -- errno.h
  "^FP_[A-Z]", "^MATH_",         -- math.h
  "^M_[0-9A-Z]",                 -- math.h constants (GNU, XSI)
  "^FLT_", "^DBL_", "^LDBL_",    -- float.h
  "^INT", "^UINT",               -- stdint.h limits and *_C macros
  "^SIZE_MAX$", "^PTRDIFF_", "^WCHAR_", "^WINT_", "^SIG", "^SEEK_",
  "^EXIT_", "^PRI[a-zX]", "^SCN[a-zX]", "^LC_[A-Z]",
  "_t$",                         -- POSIX: type names
}

-- Is 'name' unsafe as a C identifier of the generated code?  'prefix':
-- the model's symbol prefix; PREFIX_* is gradc's (NAME_BATCH, NAME_X_SIZE,
-- NAME_H, NAME_arena, ...).
function M.hazard(name, prefix)
  if keywords[name] then return true end
  for _, p in ipairs(hazard_patterns) do
    if name:match(p) then return true end
  end
  return prefix ~= nil and name:sub(1, #prefix + 1) == prefix .. "_"
end

-- The C identifier of user name 'name' in a scope whose names are 'taken'
-- (a set, updated).  A name that is safe (not a hazard) and free is used
-- as it is; otherwise it is mangled: a reserved prefix pattern gets "u"
-- in front (_W -> u_W, gradc_rt -> ugradc_rt, mlp_BATCH -> umlp_BATCH),
-- '__' becomes '_u_', and a keyword or a taken name gets '_' appended
-- until it is free.  So user names never collide with each other, with
-- gradc's names (all of them PREFIX_*, gradc_*, GRADC_*, or taken locals
-- asked for after the user's), or with the library's.
function M.cname(name, taken, prefix)
  -- each step removes its hazard (a "u" in front moves every reserved
  -- prefix, PREFIX_ included, one place on) or makes the name longer
  local s = name
  while M.hazard(s, prefix) or taken[s] do
    if s:find("__", 1, true) then
      s = s:gsub("__", "_u_")
    elseif s:match("_t$") or keywords[s] or taken[s] then
      s = s .. "_"
    else
      s = "u" .. s
    end
  end
  taken[s] = true
  return s
end

------------------------------------------------------------------ comments

-- Text safe inside /* */: no comment delimiters, no trigraphs, printable.
function M.comment(s)
  s = s:gsub("[^\32-\126]", "?")
  s = s:gsub("%*/", "* /"):gsub("/%*", "/ *"):gsub("%?%?", "? ?")
  return s
end

-- "[10,32]" from a dims list.
function M.shape(dims)
  local t = {}
  for i, d in ipairs(dims) do t[i] = M.int(d) end
  return "[" .. concat(t, ",") .. "]"
end

------------------------------------------------------------------ indices

-- "e * c", "e", or nil when c is 0.  'e' must already be an atom.
function M.term(e, c)
  if c == 0 or e == nil then return nil end
  if c == 1 then return e end
  return e .. " * " .. M.int(c)
end

-- Sum of the non-nil terms t[1..n] (n given: entries may be nil), or "0".
function M.sum(t, n)
  local parts = {}
  for i = 1, n or #t do
    if t[i] then parts[#parts + 1] = t[i] end
  end
  if #parts == 0 then return "0" end
  return concat(parts, " + ")
end

-- Drop size-1 dimensions and merge neighbours that every stride list in
-- 'lists' walks contiguously (outer stride == inner stride * inner dim).
-- Returns the merged dims and, per list, the merged strides.
function M.merge_dims(dims, lists)
  local D, S = {}, {}
  for l = 1, #lists do S[l] = {} end
  for k = 1, #dims do
    local d = dims[k]
    if d ~= 1 then
      local n = #D
      local ok = n > 0
      for l = 1, #lists do
        if ok and S[l][n] ~= lists[l][k] * d then ok = false end
      end
      if ok then
        D[n] = D[n] * d
        for l = 1, #lists do S[l][n] = lists[l][k] end
      else
        D[n + 1] = d
        for l = 1, #lists do S[l][n + 1] = lists[l][k] end
      end
    end
  end
  return D, S
end

-- Row-major strides of dims.
function M.contiguous(dims)
  local s, acc = {}, 1
  for k = #dims, 1, -1 do
    s[k] = acc
    acc = acc * dims[k]
  end
  return s
end

function M.numel(dims)
  local n = 1
  for _, d in ipairs(dims) do n = n * d end
  return n
end

-- The offset, in an operand addressed by 'strides' over full dims 'dims',
-- of the element at linear index sum(v.e * v.w) of 'vars' (each var an
-- atom v.e taking values 0..v.n-1, weight v.w; the vars form a mixed
-- radix: each var's range n * w fits under the next weight).  Affine in
-- the vars when each var stays inside one (merged) dimension; otherwise
-- per-dimension division and remainder of the linear index.
function M.offset(vars, dims, strides)
  local D, SS = M.merge_dims(dims, {strides})
  local S = SS[1]
  local P = M.contiguous(D)
  local terms, affine = {}, true
  for _, v in ipairs(vars) do
    if v.n > 1 then
      local hit = false
      for k = 1, #D do
        if v.w >= P[k] and v.w % P[k] == 0 and v.w * v.n <= P[k] * D[k] then
          terms[#terms + 1] = M.term(v.e, v.w // P[k] * S[k])
          hit = true
          break
        end
      end
      if not hit then affine = false break end
    end
  end
  if affine then return M.sum(terms) end
  local lin = {}
  for _, v in ipairs(vars) do lin[#lin + 1] = M.term(v.e, v.w) end
  local e = "(" .. M.sum(lin) .. ")"
  local out = {}
  for k = 1, #D do
    if S[k] ~= 0 then
      local x = e
      if P[k] ~= 1 then x = "(" .. x .. " / " .. M.int(P[k]) .. ")" end
      if k > 1 then x = "(" .. x .. " % " .. M.int(D[k]) .. ")" end
      out[#out + 1] = M.term(x, S[k])
    end
  end
  return M.sum(out)
end

-- The linear index sum(v.e * v.w) of 'vars'.
function M.linear(vars)
  local t = {}
  for _, v in ipairs(vars) do
    if v.n > 1 then t[#t + 1] = M.term(v.e, v.w) end
  end
  return M.sum(t)
end

------------------------------------------------------------------ broadcast

-- Full dims of a node table (batch first when batched).
function M.full(node, batch)
  if node.full then return node.full end
  local d = {}
  if node.batched then d[1] = batch end
  for _, x in ipairs(node.shape) do d[#d + 1] = x end
  return d
end

-- Strides of node 'inp' over the full index space of node 'out' (NumPy
-- broadcasting on per-sample shapes; 0 where 'inp' is broadcast), as
-- bcast_strides() in ir.c computes them.
function M.bcast(out, inp)
  local s = {}
  if out.batched then s[1] = inp.batched and M.numel(inp.shape) or 0 end
  local off = #out.shape - #inp.shape
  for i = 1, #out.shape do
    local j, st = i - off, 0
    if j >= 1 and inp.shape[j] ~= 1 then
      st = 1
      for k = j + 1, #inp.shape do st = st * inp.shape[k] end
    end
    s[#s + 1] = st
  end
  return s
end

------------------------------------------------------------------ text

-- A line buffer: b:add(s) appends one line; b:text() joins them once.
local Lines = {}
Lines.__index = Lines

function M.lines()
  return setmetatable({n = 0}, Lines)
end

function Lines:add(s)
  self.n = self.n + 1
  self[self.n] = s
end

function Lines:addf(...)
  self:add(fmt(...))
end

function Lines:append(other)
  for i = 1, other.n do self:add(other[i]) end
end

function Lines:text()
  return concat(self, "\n", 1, self.n) .. "\n"
end

-- Columns padded to their widest cell: rows is a list of lists of strings.
function M.table(rows, indent)
  local w = {}
  for _, r in ipairs(rows) do
    for i, c in ipairs(r) do
      if not w[i] or #c > w[i] then w[i] = #c end
    end
  end
  local out = {}
  for _, r in ipairs(rows) do
    local cells = {}
    for i, c in ipairs(r) do
      cells[i] = i < #r and c .. (" "):rep(w[i] - #c) or c
    end
    out[#out + 1] = (indent or "") .. concat(cells, "  ")
  end
  return out
end

-- A header's opening after its banner: the include guard, the includes
-- (each "<name>" or "\"name\"": a blank line between the system and the
-- local ones) and extern "C" for C++; header_close ends it.  api.lua's
-- NAME.h and int8.lua's both.
function M.header_open(h, guard, includes)
  h:addf("#ifndef %s", guard)
  h:addf("#define %s", guard)
  h:add("")
  local sys = true
  for _, inc in ipairs(includes) do
    if sys and inc:sub(1, 1) == '"' then
      h:add("")
      sys = false
    end
    h:add("#include " .. inc)
  end
  h:add("")
  h:add("#ifdef __cplusplus")
  h:add("extern \"C\" {")
  h:add("#endif")
  h:add("")
end

function M.header_close(h, guard)
  h:add("#ifdef __cplusplus")
  h:add("}")
  h:add("#endif")
  h:add("")
  h:addf("#endif /* %s */", guard)
end

return M
