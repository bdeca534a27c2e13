# ctest c_api_one_definition (cmake -P): sgdx_c_tests links the C API (sgdx_c)
# and the runtime (sgdx_runtime). A function both libraries compile for
# themselves exists twice in that link, each copy built with its own flags,
# and the link order picks one (before one compilation served both,
# runtime/kernels/reference.cpp was such a file: -ffp-contract=off
# -fno-exceptions in sgdx_c, the runtime's flags in sgdx_runtime).
#   -DNM=nm -DC_OBJECTS=a.o|b.o -DRUNTIME_OBJECTS=c.o|d.o -DBINARY=sgdx_c_tests
# C_OBJECTS and RUNTIME_OBJECTS are the objects each library compiles itself
# ($<TARGET_OBJECTS>): the ones they share (sgdx_kernels_reference, one
# compilation) are in neither. Fails if a global symbol is defined strongly
# in both, or if the binary defines sgdx::kernels::reference() other than once.
cmake_minimum_required(VERSION 3.22)  # IN_LIST and the rest of the script's policies
foreach(var NM C_OBJECTS RUNTIME_OBJECTS BINARY)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "one_definition.cmake: -D${var}=... is missing")
  endif()
endforeach()

# The strong global definitions (nm types T D B R G S) in the objects of `list`.
# Weak ones (W V, inline functions and templates) and unique ones (u) may be
# in many objects by design.
function(strong_symbols list out)
  string(REPLACE "|" ";" objects "${list}")
  if(NOT objects)
    message(FATAL_ERROR "one_definition.cmake: an empty object list")
  endif()
  execute_process(COMMAND ${NM} --defined-only --extern-only --demangle ${objects}
                  OUTPUT_VARIABLE text RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed (${rc}): ${err}")
  endif()
  string(REPLACE ";" "\\;" text "${text}")
  string(REPLACE "\n" ";" lines "${text}")
  set(symbols "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[0-9a-fA-F]* [TDBRGS] (.+)$")
      list(APPEND symbols "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  set(${out} "${symbols}" PARENT_SCOPE)
endfunction()

strong_symbols("${C_OBJECTS}" c_symbols)
strong_symbols("${RUNTIME_OBJECTS}" runtime_symbols)
list(LENGTH c_symbols n_c)
list(LENGTH runtime_symbols n_runtime)
set(both "")
foreach(symbol IN LISTS c_symbols)
  if(symbol IN_LIST runtime_symbols)
    list(APPEND both "${symbol}")
  endif()
endforeach()
if(both)
  list(JOIN both "\n  " shown)
  message(FATAL_ERROR "defined by both sgdx_c's and sgdx_runtime's own objects (two compilations; "
          "the link order picks one):\n  ${shown}")
endif()

execute_process(COMMAND ${NM} --defined-only --demangle ${BINARY} OUTPUT_VARIABLE text RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} ${BINARY} failed (${rc})")
endif()
string(REGEX MATCHALL "[0-9a-fA-F]+ T sgdx::kernels::reference\\(\\)\n" found "${text}")
list(LENGTH found n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "${BINARY} defines sgdx::kernels::reference() ${n} times, not once")
endif()
message(STATUS "one definition: ${n_c} strong symbols in sgdx_c's objects, ${n_runtime} in sgdx_runtime's, "
        "none in both; sgdx::kernels::reference() once in the test binary")
