# One call per library, executable, test and benchmark, so every target gets the same flags.
#
#   gcprune_library(NAME SRCS a.cc b.cc DEPS lib1 lib2 [PUBLIC_INCLUDE dir])
#   gcprune_executable(NAME SRCS main.cc DEPS ...)
#   gcprune_test(NAME SRCS foo_test.cc DEPS ... [TIMEOUT seconds] [LABELS l1 l2])
#   gcprune_benchmark(NAME SRCS bench.cc DEPS ...)
# Include paths are rooted at the repository (and the build tree for generated code), so headers are
# included as "trainer_service/engine/model.h".

function(_gcprune_common_setup target)
  target_compile_options(${target} PRIVATE ${GCPRUNE_WARNING_FLAGS} ${GCPRUNE_EXTRA_FLAGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
endfunction()

function(gcprune_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  _gcprune_common_setup(${name})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

function(gcprune_executable name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  _gcprune_common_setup(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

function(gcprune_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  _gcprune_common_setup(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} gcprune_testing GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  # One ctest entry per executable keeps process start-up (oneDNN, gRPC) paid once per file.
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "GCPRUNE_SOURCE_DIR=${PROJECT_SOURCE_DIR};GCPRUNE_BINARY_DIR=${PROJECT_BINARY_DIR}")
  if(ARG_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}")
  endif()
endfunction()

function(gcprune_benchmark name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  _gcprune_common_setup(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
endfunction()
