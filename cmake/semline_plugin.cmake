# semline_add_plugin(NAME [NO_INSTALL] SOURCES...): a loadable semline plugin, libsemline-NAME.so.
# Only the entry point is exported (every other symbol hidden), so plugins cannot clash with each
# other or with the host. The plugin is installed to SEMLINE_PLUGIN_INSTALL_DIR under the install
# prefix (lib/semline/plugins), where the semline executable of that prefix finds it; NO_INSTALL
# is for plugins that only tests load. A build without a build type (plain `cmake -S . -B build`)
# would compile the plugin unoptimised and run every station it serves several times slower: the
# plugin is then built as Release would build it (-O2, NDEBUG), with a note.
function(semline_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 P "NO_INSTALL" "" "")
  add_library(${name} MODULE ${P_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE semline::sdk)
  if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
    message(STATUS "semline_add_plugin(${name}): no CMAKE_BUILD_TYPE, so the plugin is built optimised (-O2, NDEBUG); "
                   "set CMAKE_BUILD_TYPE to choose")
    target_compile_options(${name} PRIVATE -O2)
    target_compile_definitions(${name} PRIVATE NDEBUG)
  endif()
  set_target_properties(${name} PROPERTIES
    PREFIX "libsemline-"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # Inside the semline build all plugins share one folder, the one the build tree's executable
  # searches; an out-of-tree build keeps its own layout.
  if(DEFINED SEMLINE_PLUGIN_BUILD_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SEMLINE_PLUGIN_BUILD_DIR})
  endif()
  if(NOT P_NO_INSTALL)
    if(NOT SEMLINE_PLUGIN_INSTALL_DIR)
      message(FATAL_ERROR "semline_add_plugin(${name}): SEMLINE_PLUGIN_INSTALL_DIR is not set; "
                          "use find_package(semline) before adding plugins")
    endif()
    install(TARGETS ${name} LIBRARY DESTINATION ${SEMLINE_PLUGIN_INSTALL_DIR})
  endif()
endfunction()
