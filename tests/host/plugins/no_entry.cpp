// A real shared library that exports a symbol close to the entry point, but not the entry point.
#include <semline/plugin.h>

extern "C" SEMLINE_EXPORT int semline_plugin(void) { return 1; }
