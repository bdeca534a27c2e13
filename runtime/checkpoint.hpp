#pragma once
// Checkpoints: a safetensors file holding the model's tensors (same names as a
// model file), SGD's momentum buffers ("optimizer.momentum.<name>"), and in its
// header the TrainingState plus the caller's settings. Written atomically, so a
// crash at any moment leaves the previous checkpoint or the new one.
#include <map>
#include <string>

#include "module.hpp"
#include "optim.hpp"
#include "safetensors.hpp"
#include "train.hpp"

namespace sgdx {

void save_checkpoint(const std::string& path, Module& model, SGD& opt, const TrainingState& state,
                     const std::map<std::string, std::string>& settings);

// The caller's settings saved with a checkpoint. Throws sgdx::Error naming
// `source` if the file is not a checkpoint.
std::map<std::string, std::string> checkpoint_settings(const SafetensorsFile& file, const std::string& source);

// Restores model, optimiser state and returns the training state; `settings`
// receives the caller's settings saved with it. Throws sgdx::Error naming
// `source` if the file is not a checkpoint or does not fit the model/optimiser;
// the model and optimiser are then unchanged.
TrainingState restore_checkpoint(const SafetensorsFile& file, const std::string& source, Module& model,
                                 SGD& opt, std::map<std::string, std::string>* settings = nullptr);

}  // namespace sgdx
