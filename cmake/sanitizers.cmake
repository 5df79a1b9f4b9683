# Sanitizer and fuzzing builds (see docs/reliability.md).
#
# SEMLINE_SANITIZE instruments everything this build compiles, plugins included, with
# AddressSanitizer (LeakSanitizer comes with it) and UndefinedBehaviorSanitizer, and makes every
# finding fatal. Plugins are MODULE libraries loaded with dlopen: they find the sanitizer runtime
# because every executable is linked with -fsanitize too, so the runtime is loaded before them.
#
# SEMLINE_FUZZ adds libFuzzer coverage instrumentation on top and builds the harnesses in
# tests/fuzz. libFuzzer ships with clang only, so it needs CMAKE_CXX_COMPILER=clang++.
option(SEMLINE_SANITIZE "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(SEMLINE_FUZZ "Build the libFuzzer harnesses (clang only; implies SEMLINE_SANITIZE)" OFF)

if(SEMLINE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SEMLINE_FUZZ needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}; "
                        "configure with -DCMAKE_CXX_COMPILER=clang++ or the 'fuzz' preset")
  endif()
  set(SEMLINE_SANITIZE ON CACHE BOOL "" FORCE)
endif()

if(SEMLINE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()

if(SEMLINE_FUZZ)
  # Coverage feedback from the core and the plugins the harnesses load; only the harness
  # executables link libFuzzer's main (-fsanitize=fuzzer, set in tests/fuzz).
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
