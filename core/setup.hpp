#pragma once
// Set-up code (planning, checks, configs, model files, initialisation) is
// compiled for size on the device, where the files that hold the training and
// inference paths are -O2 for their loops (device/CMakeLists.txt): wrap it in
// SGDX_SETUP_BEGIN ... SGDX_SETUP_END. Elsewhere the two do nothing.
#if defined(__arm__) && defined(__GNUC__) && !defined(__clang__)
#define SGDX_SETUP_BEGIN _Pragma("GCC push_options") _Pragma("GCC optimize(\"Os\")")
#define SGDX_SETUP_END _Pragma("GCC pop_options")
#else
#define SGDX_SETUP_BEGIN
#define SGDX_SETUP_END
#endif
