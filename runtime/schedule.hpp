#pragma once
// Learning-rate schedules, as PyTorch's torch.optim.lr_scheduler computes them:
//   step      StepLR(step_size=1, gamma): epoch e trains at lr x gamma^(e-1)
//             (gamma 1: a constant rate, the tutorial's way)
//   onecycle  OneCycleLR(max_lr=lr, total_steps=epochs x batches) with its
//             defaults: pct_start 0.3, div_factor 25, final_div_factor 1e4,
//             cosine annealing, and the momentum (SGD's momentum, Adam's beta1)
//             cycled between 0.95 and 0.85; stepped after every batch
//   cosine    CosineAnnealingLR(T_max=epochs x batches, eta_min=0), per batch
// A rate is a pure function of the step, so a resumed run continues bit for bit.
#include <cstddef>
#include <string>
#include <vector>

namespace sgdx {

enum class LrSchedule { kStep, kOneCycle, kCosine };

// "step", "onecycle", "cosine"
const std::vector<std::string>& schedule_names();
const char* schedule_name(LrSchedule s);
// Throws sgdx::Error listing the names if `name` is none of them.
LrSchedule parse_schedule(const std::string& name);

struct ScheduledRate {
    double lr = 0;
    bool cycles_momentum = false;  // OneCycleLR: momentum holds the value to set
    double momentum = 0;
};

// The rate for batch `step` (0-based) of `steps_per_epoch` in epoch `epoch`
// (1-based) of `epochs`, with `base_lr` the optimiser's lr (OneCycleLR's max_lr).
ScheduledRate scheduled_rate(LrSchedule s, double base_lr, double gamma, int epoch, int epochs, size_t step,
                             size_t steps_per_epoch);

}  // namespace sgdx
