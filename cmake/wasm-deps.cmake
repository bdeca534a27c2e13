# Header-only dependencies for the Emscripten build, from Debian's packages.
#
# Their CMake configs point at /usr/include, and /usr/include on emcc's include
# path breaks the build (glibc's headers shadow Emscripten's libc). So each header
# folder is exposed through a folder of symbolic links in the build tree, and
# plain INTERFACE targets with the names the top level uses point there.

set(SGDX_WASM_HEADER_DIR ${CMAKE_BINARY_DIR}/wasm-include)
file(MAKE_DIRECTORY ${SGDX_WASM_HEADER_DIR})
foreach(dep xtl xtensor xsimd doctest)
  if(NOT EXISTS /usr/include/${dep})
    message(FATAL_ERROR "/usr/include/${dep} is missing: install Debian's xtl-dev, xtensor-dev, "
                        "libxsimd-dev and doctest-dev (scripts/test-wasm.sh does)")
  endif()
  if(NOT EXISTS ${SGDX_WASM_HEADER_DIR}/${dep})
    file(CREATE_LINK /usr/include/${dep} ${SGDX_WASM_HEADER_DIR}/${dep} SYMBOLIC)
  endif()
endforeach()

foreach(dep xtl xtensor xsimd)
  add_library(${dep} INTERFACE IMPORTED GLOBAL)
  set_target_properties(${dep} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${SGDX_WASM_HEADER_DIR})
endforeach()
set_property(TARGET xtensor PROPERTY INTERFACE_LINK_LIBRARIES xtl)

# doctest::doctest is defined before the top level's find_package(doctest), whose
# config then skips its own target; doctest.cmake (doctest_discover_tests) is still
# needed from Debian's folder.
add_library(doctest::doctest INTERFACE IMPORTED GLOBAL)
set_target_properties(doctest::doctest PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${SGDX_WASM_HEADER_DIR})
set(doctest_DIR /usr/lib/cmake/doctest CACHE PATH "Debian's doctest CMake config")
list(APPEND CMAKE_MODULE_PATH /usr/lib/cmake/doctest)

# Every wasm object: SIMD128 (no relaxed SIMD: clang-14 emits opcodes that Node 20
# and Chromium reject). The exception mode is chosen per library in web/CMakeLists.txt.
add_compile_options(-msimd128)
add_link_options(-sALLOW_MEMORY_GROWTH=1)
add_compile_definitions(NDEBUG)
