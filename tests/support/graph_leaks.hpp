#pragma once
// Include in exactly one source file of a test binary that renders graphs through librrd.
//
// librrd 1.7.2's rrd_graph_v leaks ~0.4 KB a call (strings it formats; librrd and glibc's
// vasprintf have no frame pointers, so a fast unwind stops inside them), and fontconfig, pango and
// cairo keep font caches for the life of the process. scripts/test runs the unit tests under
// LeakSanitizer: these are not ours. profile_store_test checks our own librrd calls (create,
// inspect, update, fetch) without suppressions.
extern "C" __attribute__((used)) const char* __lsan_default_suppressions() {
  return "leak:rrd_graph_v\n"
         "leak:librrd.so\n"
         "leak:__vasprintf_internal\n"
         "leak:libfontconfig.so\n"
         "leak:libpango\n"
         "leak:libcairo.so\n"
         "leak:libglib-2.0.so\n";
}
