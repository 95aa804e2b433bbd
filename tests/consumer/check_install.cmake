# Runs as `cmake -P`: installs the built tree into a scratch prefix, moves the prefix (the package
# must be relocatable), then builds and runs the consumer program against the moved tree twice:
# through the CMake package (find_package(tapegrad)) and through pkg-config (tapegrad.pc). Then
# configures tapegrad as a library only, top-level and as a subproject, with Catch2 and CLI11
# unfindable. Any failing step fails the test.
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message("${out}")
  set(run_output "${out}" PARENT_SCOPE)
endfunction()
run(${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${WORK_DIR}/prefix)
file(RENAME ${WORK_DIR}/prefix ${WORK_DIR}/moved)
set(prefix ${WORK_DIR}/moved)
file(GLOB_RECURSE pc_files ${prefix}/*/tapegrad.pc)
file(GLOB_RECURSE target_files ${prefix}/*/tapegradTargets*.cmake)
if(NOT pc_files OR NOT target_files)
  message(FATAL_ERROR "the install has no tapegrad.pc or no tapegradTargets.cmake")
endif()

# The exported target: no warning flags of ours, no absolute path to a BLAS library.
foreach(f IN LISTS target_files)
  file(READ ${f} targets)
  if(targets MATCHES "-Wall|-Wextra|-Wpedantic|-Werror")
    message(FATAL_ERROR "warning flags leaked into the exported target (${f})")
  endif()
  if(targets MATCHES "/[^;\" ]*(openblas|blas)[^;\" ]*\\.(so|a)")
    message(FATAL_ERROR "${f} names a BLAS library by absolute path: ${CMAKE_MATCH_0}")
  endif()
endforeach()

# 1. The CMake package.
run(${CMAKE_COMMAND} -S ${CONSUMER_SRC} -B ${WORK_DIR}/build
    -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER})  # the library's compiler: its sanitizer runtime
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)

# 2. pkg-config: the flags of the moved tree's tapegrad.pc, one compiler call.
find_program(PKG_CONFIG NAMES pkg-config pkgconf)
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "pkg-config is not installed (scripts/deps installs pkgconf)")
endif()
get_filename_component(pc_dir ${pc_files} DIRECTORY)
run(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pc_dir} ${PKG_CONFIG} --cflags --libs tapegrad)
string(STRIP "${run_output}" pc_flags)
string(FIND "${pc_flags}" "-I${prefix}/" at)
if(at EQUAL -1)
  message(FATAL_ERROR "tapegrad.pc does not point into the moved prefix ${prefix}: ${pc_flags}")
endif()
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
run(${CXX_COMPILER} -std=c++17 ${CONSUMER_SRC}/main.cpp -o ${WORK_DIR}/consumer_pc ${pc_flags})
run(${WORK_DIR}/consumer_pc)

# 3. The library alone, configured (not built: its sources include neither Catch2 nor CLI11).
set(no_test_deps -DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON -DCMAKE_DISABLE_FIND_PACKAGE_CLI11=ON)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/library-only -DTAPEGRAD_BUILD_TESTS=OFF
    -DTAPEGRAD_BUILD_EXAMPLES=OFF ${no_test_deps} -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
run(${CMAKE_COMMAND} -S ${CONSUMER_SRC}/subproject -B ${WORK_DIR}/subproject
    -DTAPEGRAD_SOURCE_DIR=${SOURCE_DIR} ${no_test_deps} -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
