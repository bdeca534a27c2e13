#include "progress.hpp"

#include <unistd.h>

namespace sgdx {

ProgressBar::ProgressBar(std::FILE* out, bool quiet)
    : out_(out), tty_(isatty(fileno(out))), quiet_(quiet) {}

void ProgressBar::operator()(const Progress& p) {
    if (quiet_) return;
    if (p.phase == Progress::kEpochEnd) {
        if (tty_) std::fprintf(out_, "\r\033[K");
        std::fprintf(out_, "epoch %d/%d  train_loss %.4f  valid_loss %.4f  valid_acc %.4f  (%.2f s)\n",
                     p.epoch, p.epochs, p.train_loss, p.valid_loss, p.valid_acc, p.seconds);
        std::fflush(out_);
        last_draw_ = -1;
        return;
    }
    if (p.epoch != last_epoch_) {
        last_epoch_ = p.epoch;
        last_draw_ = tty_ ? -1 : 0;  // a log gets its first line after the interval
    }
    const double interval = tty_ ? 0.1 : 2.0;
    const bool final_redraw = tty_ && p.batch == p.batches;
    if (last_draw_ >= 0 && p.seconds - last_draw_ < interval && !final_redraw) return;
    last_draw_ = p.seconds;
    const double rate = p.seconds > 0 ? double(p.samples) / p.seconds : 0;
    const double eta = rate > 0 ? double(p.batches - p.batch) * (double(p.samples) / double(p.batch)) / rate : 0;
    if (tty_) {
        const int width = 30;
        int filled = int(double(width) * double(p.batch) / double(p.batches));
        char bar[width + 1];
        for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        std::fprintf(out_, "\r\033[Kepoch %d/%d [%s] %zu/%zu batches  %.0f samples/s  ETA %.1fs  loss %.4f",
                     p.epoch, p.epochs, bar, p.batch, p.batches, rate, eta, p.train_loss);
    } else {
        std::fprintf(out_, "epoch %d/%d  %zu/%zu batches  %.0f samples/s  ETA %.1fs  loss %.4f\n",
                     p.epoch, p.epochs, p.batch, p.batches, rate, eta, p.train_loss);
    }
    std::fflush(out_);
}

}  // namespace sgdx
