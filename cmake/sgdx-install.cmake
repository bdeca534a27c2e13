# `cmake --install <build> --prefix P`: the libraries, their headers, a CMake
# package (find_package(sgdx) -> sgdx::runtime, sgdx::c) and a pkg-config file
# for the C API (sgdx-c.pc). A native build installs both libraries; the
# cortex-m4 build installs the C API alone (the runtime needs xtensor and threads).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(SGDX_INCLUDE_DIR ${CMAKE_INSTALL_INCLUDEDIR}/sgdx)
set(SGDX_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sgdx)

set_target_properties(sgdx_c PROPERTIES EXPORT_NAME c)
target_include_directories(sgdx_c PUBLIC $<INSTALL_INTERFACE:${SGDX_INCLUDE_DIR}>)
install(TARGETS sgdx_c EXPORT sgdxCTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/device/sgdx.h DESTINATION ${SGDX_INCLUDE_DIR})
install(EXPORT sgdxCTargets NAMESPACE sgdx:: DESTINATION ${SGDX_CMAKE_DIR})

if(TARGET sgdx_runtime)
  set_target_properties(sgdx_runtime PROPERTIES EXPORT_NAME runtime)
  target_include_directories(sgdx_runtime PUBLIC $<INSTALL_INTERFACE:${SGDX_INCLUDE_DIR}>)
  install(TARGETS sgdx_runtime EXPORT sgdxRuntimeTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  # Headers keep their folders, so code written against the source tree
  # (#include "runtime/train.hpp", "models/zoo.hpp") compiles against the install.
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime ${PROJECT_SOURCE_DIR}/models ${PROJECT_SOURCE_DIR}/core
          DESTINATION ${SGDX_INCLUDE_DIR} FILES_MATCHING PATTERN "*.hpp")
  install(EXPORT sgdxRuntimeTargets NAMESPACE sgdx:: DESTINATION ${SGDX_CMAKE_DIR})
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sgdxConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/sgdxConfig.cmake INSTALL_DESTINATION ${SGDX_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/sgdxConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/sgdxConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/sgdxConfigVersion.cmake
        DESTINATION ${SGDX_CMAKE_DIR})

# The C API is C++ inside, built without exceptions or RTTI; a C program links
# it with the C++ runtime's support library and libm.
configure_file(${PROJECT_SOURCE_DIR}/cmake/sgdx-c.pc.in ${CMAKE_CURRENT_BINARY_DIR}/sgdx-c.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/sgdx-c.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(TARGET sgdx)  # the CLI, for a prefix that is a whole installation
  install(TARGETS sgdx RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
