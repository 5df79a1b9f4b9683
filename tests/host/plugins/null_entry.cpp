// Exports the entry point, which answers with no descriptor.
#include <semline/plugin.h>

extern "C" SEMLINE_EXPORT const semline_plugin_info* semline_plugin_entry(uint32_t) { return nullptr; }
