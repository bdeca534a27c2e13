# cmake -DCLANG=... -DWASM_LD=... -DSRC=... -DOBJ=... -DOUT=... "-DCFLAGS=..." "-DLDFLAGS=..."
#       -P build_module.cmake
# Compiles SRC with clang-19 and links it with wasm-ld-19 into OUT. When either step
# fails (e.g. a kernel header calls a libc function the freestanding module does not
# have), OUT is left empty with a warning instead of failing the whole wasm build:
# the runtime then never offers the relaxed set, and the tests that expect it
# (wasm_relaxed_kernels_*) fail and show why (the log beside OUT).
set(log "${OUT}.log")
execute_process(COMMAND ${CLANG} ${CFLAGS} -MD -MF ${OBJ}.d -MT ${OUT} -c ${SRC} -o ${OBJ}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  execute_process(COMMAND ${WASM_LD} ${LDFLAGS} -o ${OUT}.tmp ${OBJ}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out2 ERROR_VARIABLE out2)
  string(APPEND out "${out2}")
endif()
file(WRITE "${log}" "${out}")
if(rc EQUAL 0)
  file(RENAME "${OUT}.tmp" "${OUT}")
else()
  message(WARNING "relaxed-SIMD kernel module not built (the page will run wasm_simd128): ${out}")
  file(WRITE "${OUT}" "")
  if(NOT EXISTS "${OBJ}.d")
    file(WRITE "${OBJ}.d" "${OUT}: ${SRC}\n")
  endif()
endif()
