#pragma once
// A fixed pool of workers for splitting one kernel call into parts. Workers sleep
// on a condition variable between jobs, after watching kHotMicroseconds for the
// next one (so they stay hot through a training step's layers; the watch yields
// now and then so that a loaded 2-core machine's other threads still run). Thread
// t (the caller is 0) takes part t first, so the same part of every step runs on
// the same core with its data in that core's cache; then parts are claimed one at
// a time by whichever thread is free: a worker that the OS wakes late (the other
// core is busy) finds its part already done by the caller, so more threads never
// cost more than one thread's work plus a wake-up.
//
// A part may itself call run() (a data-parallel step runs a whole network in one
// part, its layers splitting their own work): a call made from inside a part runs
// its parts inline on that thread, one after another, and parts_for() says 1
// there, so nested calls never wait for a thread that is waiting for them.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace sgdx {

class ThreadPool {
public:
    explicit ThreadPool(size_t threads = 1);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    size_t size() const { return workers_.size() + 1; }

    // How long a worker watches for the next job, and a job's caller for its last
    // part, before sleeping.
    static constexpr long kHotMicroseconds = 200;
    // A worker that finishes this many jobs in a row on the core its caller runs on
    // (the two take turns there) moves itself to another core it may use.
    static constexpr unsigned kCrowdedJobs = 8;

    // The parts to split `items` independent items into (a batch's samples, a
    // vector's values) so that each part holds at least `min_items` of them: 1 (run
    // inline, no thread woken) when splitting does not pay.
    // Inside a part of a job (in_job()): 1, the work runs inline.
    size_t parts_for(size_t items, size_t min_items) const {
        if (in_job()) return 1;
        const size_t n = min_items ? items / min_items : items;
        return n < 1 ? 1 : n < size() ? n : size();
    }

    // While pinned, part p runs on thread p % size() (the caller is thread 0) and no
    // thread takes another's part. reserve_kernel_scratch (backend.hpp) pins it so
    // that every thread sizes its own kernel scratch (per-thread buffers) before the
    // first epoch.
    void set_pinned(bool on) { pinned_ = on; }
    bool pinned() const { return pinned_; }

    // How many times a worker has moved itself off its caller's core (kCrowdedJobs).
    // Where it runs next is the OS scheduler's choice: on a busy machine it may
    // bring the worker back.
    unsigned moves_off_caller_core() const { return moves_.load(std::memory_order_relaxed); }

    // Whether the calling thread is running a part of some pool's job now.
    static bool in_job();

    // Calls fn(part) for part in [0, parts) across the pool and returns when all
    // are done; any thread may run any part, each part runs once. Allocates nothing.
    // Called from inside a part (in_job()), the parts run inline, in order.
    template <class Fn>
    void run(size_t parts, Fn&& fn) {
        if (parts <= 1 || workers_.empty() || in_job()) {
            for (size_t p = 0; p < parts; ++p) fn(p);
            return;
        }
        run_erased(parts, [](void* ctx, size_t p) { (*static_cast<Fn*>(ctx))(p); }, &fn);
    }

private:
    using Job = void (*)(void*, size_t);
    void run_erased(size_t parts, Job job, void* ctx);
    void worker_loop(size_t index);
    // The next unclaimed part of job `generation` into `part`; false when none is left.
    bool claim(unsigned long generation, size_t thread, size_t& part);
    void finish_part();
    std::atomic<unsigned> moves_{0};  // moves_off_caller_core()
    // The job's pinned flag and part count as the thread saw them when it took the job.
    void work_on(unsigned long generation, Job job, void* ctx, size_t thread, bool pinned, size_t parts);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    Job job_ = nullptr;
    void* ctx_ = nullptr;
    size_t parts_ = 0, next_part_ = 0;
    std::atomic<size_t> parts_done_{0};  // written under mutex_, peeked without it
    std::vector<char> taken_;  // taken_[t]: part t (a thread's own) claimed in this job
    std::atomic<unsigned long> generation_{0};  // written under mutex_, peeked without it
    bool stop_ = false;
    std::atomic<bool> pinned_{false};  // for the next job
    bool pinned_job_ = false;          // the current job's
    std::atomic<int> caller_cpu_{-1};  // the core the current job's caller runs on (-1: unknown)
};

// The most items one part takes when any count of items up to max_items is split
// into parts(count) parts as run() callers split them (part p of P: items
// [n·p/P, n·(p+1)/P)): what a layer's per-part buffers must hold.
template <class Parts>
size_t largest_part(size_t max_items, Parts&& parts) {
    size_t most = 0;
    for (size_t n = 1; n <= max_items; ++n) {
        const size_t P = parts(n), part = (n + P - 1) / P;
        if (part > most) most = part;
    }
    return most;
}

// The pool the runtime's layers split work on (1 thread unless set).
ThreadPool& thread_pool();
void set_num_threads(size_t threads);

}  // namespace sgdx
