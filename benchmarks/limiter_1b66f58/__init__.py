"""The Gemini limiter as release 1b66f58 shipped it (its Python and Lua, unchanged but for
the imports), kept so the benchmarks measure before and after in the same run:
grants stamped at acquire, two round trips per request, publishing and reaping on every
call, per-grant token look-ups, the ceiling at 70 % after any 429, back by 5 % a window.
Not used by ocr-pool itself."""
