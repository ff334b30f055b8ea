-- Under LuaJIT, ravan's own Lua runs in the interpreter. It is glue between C functions (the
-- core, lua-cjson) that traces do not compile across, so the JIT's attempts at it were all cost:
-- in a LÖVE frame loop, the frame in which a page arrived spent 1.6 to 1.8 ms (p99) recording
-- and compiling traces, against 0.5 to 0.9 ms interpreted. A module calls this from its main
-- chunk, which turns the JIT off for every function the chunk defines; PUC Lua is untouched,
-- and so is the host's own code.
local jit = rawget(_G, "jit")

return function()
  if jit then jit.off(debug.getinfo(2, "f").func, true) end
end
