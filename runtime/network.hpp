#pragma once
// Networks as data: a PyTorch printout (print(model) of an nn.Sequential, parsed
// by core/printout) or the core's layer list of a named model (core/architecture),
// built into a Sequential of the runtime's layers. One builder for the zoo's
// Sequentials and a user's own, so each layer is wired up once.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/printout.hpp"
#include "rng.hpp"
#include "sequential.hpp"

namespace sgdx {

using LayerList = std::vector<core::LayerSpec>;

// The layers of a printout. Throws sgdx::Error "<source>: line N: <excerpt>: <problem>"
// (without "<source>: " where source is empty).
LayerList parse_printout(const std::string& text, const std::string& source);
// PyTorch's print(model) of those layers, as torch writes it.
std::string printout_text(const LayerList& layers);

// What one image of rows x cols pixels is to the first layer: (1, rows, cols) if
// it starts with a Conv2d, pooling or BatchNorm2d (PyTorch's image batches),
// else rows x cols flat values.
Shape network_input(const LayerList& layers, size_t rows, size_t cols);

// The Sequential, its children named as the printout names them, its weights
// drawn from rng layer by layer as PyTorch's constructors do (weight, then bias);
// built for `input`. Throws sgdx::Error naming the line of a layer sgdx cannot
// run (a non-square kernel, pool padding, ...) or whose shapes do not fit.
std::unique_ptr<Sequential> build_network(const LayerList& layers, const Shape& input, Rng& rng, uint64_t seed);

}  // namespace sgdx
