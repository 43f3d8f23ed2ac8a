-- conv_scalar.lua: the tile form of a convolution on a scalar FPU (the
-- Cortex-M rows: select_conv.c's record with v 1 and mb 1), reading its
-- input in place: no stack buffer, so any layer fits (ic_resnet8's padded
-- rows, 16-64 channels x 3 rows x 34 columns, exceeded the 2 KiB the
-- Cortex-M rows allow) and no row copy.
--
-- One output row i at a time: the kernel rows u whose input row is inside
-- ([u0, u1), computed at run time: padding rows are skipped, not
-- multiplied); tiles of MR output channels by NR columns in registers sum
-- over (c, u, v): MR weights (one pointer per channel, offsets of a few
-- bytes: immediate-offset loads) and the NR + kw - 1 input values the
-- tile's columns read from the row (GCC loads each once); then the
-- group's epilogue on each sum.  Tiles whose every tap reads inside the
-- row run in a loop; those at the edges are printed with their columns
-- known and leave out the taps that would read the padding.  Sums in the
-- order (c, u, v).
--
-- g: the geometry conv.lua's tile form takes (forward_geometry or the
-- stride-1 dx_geometry): input x [cin, h, w], output [co, ho, wo], window,
-- widx(r, c, u, v) the weight's index and wv its step along v (1, or -1
-- for the flipped weights of the input gradient).

local cfmt = require "cfmt"
local group = require "group"

local M = {}
local fmt = string.format

-- h: conv.lua's helpers (geometry, at, plus, vars_of, loop0, channel_blocks).
function M.tile_direct(K, root, members, p, t, g, h)
  local T, MR, NR = K.T, t.mr, t.nr
  local plus, at, sum = h.plus, h.at, cfmt.sum
  local b, i, c, u, u0, u1 = K:iname("b"), K:iname("i"), K:iname("c"), K:iname("u"),
    K:iname("u0"), K:iname("u1")
  local xs = K:iname("xs")
  h.loop0(K, b, g.nb)
  K:loop(i, g.ho)
  -- the kernel rows inside: i sh + u dh - pt in [0, h)
  local r0 = fmt("%d - %s", g.pt, cfmt.term(i, g.sh))
  local r1 = fmt("%d - %s", g.h - 1 + g.pt, cfmt.term(i, g.sh))
  if g.dh == 1 then
    K:line(fmt("const int %s = %s > 0 ? %s : 0;", u0, r0, r0))
    K:line(fmt("const int %s = %s < %d ? %s + 1 : %d;", u1, r1, g.kh - 1, r1, g.kh))
  else
    K:line(fmt("const int %s = %s > 0 ? (%s + %d) / %d : 0;", u0, r0, r0, g.dh - 1, g.dh))
    K:line(fmt("const int %s = %s < 0 ? 0 : (%s) / %d + 1 < %d ? (%s) / %d + 1 : %d;", u1, r1, r1,
      g.dh, g.kh, r1, g.dh, g.kh))
  end
  -- one tile: channels o0 .. o0 + mr - 1, columns j0 .. j0 + n - 1
  -- (j0 a number: an edge tile, its taps outside the row left out)
  local function tile(o0, mr, j0, n)
    local function col(cc, v)  -- the input column of column j0 + cc, tap v
      if type(j0) == "number" then return (j0 + cc) * g.sw + v * g.dw - g.pl end
      return plus(cfmt.term(j0, g.sw), cc * g.sw + v * g.dw - g.pl)
    end
    local function inside(cc, v)
      local e = col(cc, v)
      return type(e) ~= "number" or (e >= 0 and e < g.w)
    end
    K:open("")
    local acc = {}
    for e = 0, mr * n - 1 do
      acc[e] = K:iname("a" .. e)
      K:line(fmt("%s %s = %s;", T, acc[e], K:lit(0)))
    end
    h.loop0(K, c, g.cin)
    local cv = g.cin > 1 and c or "0"
    K:open(fmt("for (int %s = %s; %s < %s; %s++)", u, u0, u, u1, u))
    local hi = plus(sum({cfmt.term(i, g.sh), cfmt.term(u, g.dh)}), -g.pt)
    K:line(fmt("const %s *%s = %s + %s;", T, xs, K:ptr(g.x), at({g.xb and g.nb > 1 and b or nil,
      g.cin > 1 and c or nil, "(" .. hi .. ")", nil}, {g.nb, g.cin, g.h, g.w})))
    local wp = {}
    for r = 0, mr - 1 do
      local o = plus(o0, r)
      if o:find(" ") then o = "(" .. o .. ")" end
      wp[r] = K:iname("wp" .. r)
      K:line(fmt("const %s *%s = %s + %s;", T, wp[r], K:ptr(g.wt), g.widx(o, cv, u, 0)))
    end
    for v = 0, g.kw - 1 do
      local any = false
      for cc = 0, n - 1 do any = any or inside(cc, v) end
      if any then
        K:open("")
        for r = 0, mr - 1 do
          K:line(fmt("const %s %s = %s[%d];", T, K:iname("w" .. r), wp[r], v * g.wv))
        end
        for cc = 0, n - 1 do
          if inside(cc, v) then
            local xv = K:iname("x" .. cc)
            K:line(fmt("const %s %s = %s[%s];", T, xv, xs, col(cc, v)))
            for r = 0, mr - 1 do
              K:line(fmt("%s += %s * %s;", acc[r * n + cc], K:iname("w" .. r), xv))
            end
          end
        end
        K:close()
      end
    end
    K:close()
    K:close()
    -- the epilogue, element by element (the sums stay in registers)
    for r = 0, mr - 1 do
      local o = plus(o0, r)
      if o:find(" ") then o = "(" .. o .. ")" end
      for cc = 0, n - 1 do
        local j = type(j0) == "number" and tostring(j0 + cc) or plus(j0, cc)
        if j:find(" ") then j = "(" .. j .. ")" end
        K:open("")
        group.group_body(K, root, members, h.vars_of(K, root, b, {o, i, j}), p.id, acc[r * n + cc])
        K:close()
      end
    end
    K:close()
  end
  -- the columns: tiles of NR, the ones that read inside the row in a loop
  local function columns_of(o0, mr)
    local full = g.wo // NR
    local function interior(j0, n)
      return j0 * g.sw - g.pl >= 0 and (j0 + n - 1) * g.sw + (g.kw - 1) * g.dw - g.pl < g.w
    end
    local f0, f1 = 0, full
    while f0 < full and not interior(f0 * NR, NR) do f0 = f0 + 1 end
    while f1 > f0 and not interior((f1 - 1) * NR, NR) do f1 = f1 - 1 end
    for f = 0, f0 - 1 do tile(o0, mr, f * NR, NR) end
    if f1 - f0 > 1 then
      local j0 = K:iname("j0")
      K:open(fmt("for (int %s = %d; %s < %d; %s += %d)", j0, f0 * NR, j0, f1 * NR, j0, NR))
      tile(o0, mr, j0, NR)
      K:close()
    elseif f1 - f0 == 1 then
      tile(o0, mr, f0 * NR, NR)
    end
    for f = f1, full - 1 do tile(o0, mr, f * NR, NR) end
    if g.wo % NR > 0 then tile(o0, mr, full * NR, g.wo % NR) end
  end
  h.channel_blocks(K, g.co, MR, columns_of)
  K:close()
  K:close()
end

return M
