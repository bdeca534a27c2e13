#pragma once
// Every failure the runtime reports is an sgdx::Error whose message names the
// file or argument at fault and what is wrong with it.
#include <stdexcept>
#include <string>

namespace sgdx {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Raised by fit() when the loss or a parameter stops being finite.
class DivergenceError : public Error {
public:
    DivergenceError(const std::string& what, int epoch, size_t batch)
        : Error(what), epoch_(epoch), batch_(batch) {}
    int epoch() const { return epoch_; }
    size_t batch() const { return batch_; }

private:
    int epoch_;
    size_t batch_;
};

}  // namespace sgdx
