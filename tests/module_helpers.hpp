#pragma once
// Test helpers for modules: copying weights between two models of the same layout.
#include <doctest/doctest.h>

#include "runtime/module.hpp"

namespace sgdx::test {

// to's parameters := from's, in registration order (the shapes must agree).
inline void copy_parameters(Module& from, Module& to) {
    auto a = from.parameters(), b = to.parameters();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        REQUIRE(a[i]->value.shape() == b[i]->value.shape());
        b[i]->value = a[i]->value;
    }
}

}  // namespace sgdx::test
