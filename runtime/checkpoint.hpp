#pragma once
// Checkpoints: a safetensors file holding the model's tensors (same names as a
// model file), the optimiser's state tensors ("optimizer.<state>.<name>": SGD's
// "momentum", Adam's "exp_avg" and "exp_avg_sq"), and in its header the optimiser
// ("optimizer": SGD, Adam, AdamW) and its counters (SGD's "has_momentum", Adam's
// "optimizer.step"), the model's counters ("module.<name>": a Dropout's count of
// training forwards, which its masks derive from), the TrainingState, and the
// caller's settings. The model's tensors include its buffers (BatchNorm's running
// statistics), so a resumed run goes on bit for bit. Written
// atomically, so a crash at any moment leaves the previous checkpoint or the new one.
#include <map>
#include <string>

#include "module.hpp"
#include "optim.hpp"
#include "safetensors.hpp"
#include "train.hpp"

namespace sgdx {

void save_checkpoint(const std::string& path, Module& model, Optimizer& opt, const TrainingState& state,
                     const std::map<std::string, std::string>& settings);

// Whether `name` is optimiser state in a checkpoint ("optimizer.<state>.<parameter>"
// in a file whose metadata says kind "sgdx-checkpoint"): loading the model alone
// (eval, predict, --init) passes over it.
bool is_optimizer_state(const SafetensorsFile& file, const std::string& name);

// The caller's settings saved with a checkpoint. Throws sgdx::Error naming
// `source` if the file is not a checkpoint.
std::map<std::string, std::string> checkpoint_settings(const SafetensorsFile& file, const std::string& source);

// Restores model, optimiser state and returns the training state; `settings`
// receives the caller's settings saved with it. Throws sgdx::Error naming
// `source` if the file is not a checkpoint or does not fit the model/optimiser
// (another optimiser, state missing or extra); the model and optimiser are then
// unchanged. A checkpoint that names no optimiser was made by SGD.
TrainingState restore_checkpoint(const SafetensorsFile& file, const std::string& source, Module& model,
                                 Optimizer& opt, std::map<std::string, std::string>* settings = nullptr);

}  // namespace sgdx
