#pragma once
// The CLI's view of fit()'s progress callback: a redrawn bar on a terminal,
// plain lines (at most every few seconds) when stdout is a file or pipe.
#include <cstdio>

#include "runtime/train.hpp"

namespace sgdx {

class ProgressBar {
public:
    explicit ProgressBar(std::FILE* out, bool quiet = false);
    void operator()(const Progress& p);

private:
    std::FILE* out_;
    bool tty_, quiet_;
    double last_draw_ = -1;
    int last_epoch_ = 0;
};

}  // namespace sgdx
