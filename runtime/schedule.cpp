#include "schedule.hpp"

#include <cmath>

#include "error.hpp"

namespace sgdx {
namespace {

constexpr double kPi = 3.14159265358979323846;

// OneCycleLR's defaults.
constexpr double kPctStart = 0.3, kDivFactor = 25, kFinalDivFactor = 1e4;
constexpr double kBaseMomentum = 0.85, kMaxMomentum = 0.95;

// _annealing_cos: from start at pct 0 to end at pct 1.
double anneal_cos(double start, double end, double pct) { return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1); }

}  // namespace

const std::vector<std::string>& schedule_names() {
    static const std::vector<std::string> names{"step", "onecycle", "cosine"};
    return names;
}

const char* schedule_name(LrSchedule s) {
    switch (s) {
        case LrSchedule::kOneCycle: return "onecycle";
        case LrSchedule::kCosine: return "cosine";
        default: return "step";
    }
}

LrSchedule parse_schedule(const std::string& name) {
    if (name == "step") return LrSchedule::kStep;
    if (name == "onecycle") return LrSchedule::kOneCycle;
    if (name == "cosine") return LrSchedule::kCosine;
    throw Error("unknown schedule '" + name + "' (choose one of: step, onecycle, cosine)");
}

ScheduledRate scheduled_rate(LrSchedule s, double base_lr, double gamma, int epoch, int epochs, size_t step,
                             size_t steps_per_epoch) {
    ScheduledRate r;
    const double t = double(size_t(epoch - 1) * steps_per_epoch + step);  // PyTorch's last_epoch
    const double total = double(size_t(epochs) * steps_per_epoch);
    switch (s) {
        case LrSchedule::kStep:
            r.lr = base_lr * std::pow(gamma, epoch - 1);
            break;
        case LrSchedule::kCosine:
            // The closed form; PyTorch's recursive step() agrees with it to rounding.
            r.lr = base_lr * (1 + std::cos(kPi * t / total)) / 2;
            break;
        case LrSchedule::kOneCycle: {
            // Two phases: warm-up to max_lr until step pct_start * total - 1, then
            // down to initial_lr / final_div_factor at the last step.
            const double initial = base_lr / kDivFactor, min_lr = initial / kFinalDivFactor;
            const double end1 = kPctStart * total - 1, end2 = total - 1;
            r.cycles_momentum = true;
            if (t <= end1) {
                const double pct = t / end1;
                r.lr = anneal_cos(initial, base_lr, pct);
                r.momentum = anneal_cos(kMaxMomentum, kBaseMomentum, pct);
            } else {
                const double pct = (t - end1) / (end2 - end1);
                r.lr = anneal_cos(base_lr, min_lr, pct);
                r.momentum = anneal_cos(kBaseMomentum, kMaxMomentum, pct);
            }
            break;
        }
    }
    return r;
}

}  // namespace sgdx
