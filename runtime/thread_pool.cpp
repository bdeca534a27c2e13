#include "thread_pool.hpp"

#include <algorithm>

#include <chrono>
#include <memory>
#include <thread>

#if defined(__linux__) && !defined(__EMSCRIPTEN__)
#include <sched.h>
#define SGDX_MOVE_CROWDED_WORKERS 1
#endif

namespace sgdx {

namespace {
// Set while this thread runs a part of a job. A single-threaded wasm build has no
// thread_local (wasm-ld refuses it without the atomics feature), and no second
// thread either.
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
bool t_in_job = false;
#else
thread_local bool t_in_job = false;
#endif

// Runs one part with the flag set (parts are never entered nested: run() calls
// made inside one run inline without coming here).
inline void run_part(void (*job)(void*, size_t), void* ctx, size_t part) {
    t_in_job = true;
    job(ctx, part);
    t_in_job = false;
}
}  // namespace

bool ThreadPool::in_job() { return t_in_job; }

ThreadPool::ThreadPool(size_t threads) : taken_(threads < 1 ? 1 : threads, 0) {
    for (size_t i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

// Thread t's own part t first, then any part left: a part a late thread has not
// started is taken by whoever is free. So a job's part p runs on thread p unless
// that thread is late, and the data part p touches (a slice of a layer's weights
// and gradients, Optimizer::for_each_slice) stays in that core's cache from one
// step to the next.
bool ThreadPool::claim(unsigned long generation, size_t thread, size_t& part) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (generation != generation_) return false;
    if (thread < parts_ && thread < taken_.size() && !taken_[thread]) {
        taken_[thread] = 1;
        part = thread;
        return true;
    }
    for (size_t p = 0; p < parts_ && p < taken_.size(); ++p)
        if (!taken_[p]) {
            taken_[p] = 1;
            part = p;
            return true;
        }
    if (next_part_ >= parts_) return false;
    part = next_part_++;  // parts past the threads' own, in order
    return true;
}

void ThreadPool::finish_part() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (++parts_done_ == parts_) done_.notify_one();
}

void ThreadPool::work_on(unsigned long generation, Job job, void* ctx, size_t thread, bool pinned, size_t parts) {
    if (pinned) {  // this job's parts p with p % size() == thread are this thread's alone
        for (size_t part = thread; part < parts; part += size()) {
            run_part(job, ctx, part);
            finish_part();
        }
        return;
    }
    size_t part;
    while (claim(generation, thread, part)) {
        run_part(job, ctx, part);
        finish_part();
    }
}

namespace {
int current_cpu() {
#ifdef SGDX_MOVE_CROWDED_WORKERS
    return sched_getcpu();
#else
    return -1;
#endif
}

// Woken by the caller, a sleeping worker is sometimes put on the caller's core
// (the other one briefly busy), and the two then take turns on it until the
// kernel's balancer separates them, 10 to 100+ ms later: the steps run at one
// thread's speed (the MLP: 137-143 µs a step against 75-78, for up to 800 steps).
// Moving off that core (allowed on every other core, then on all it was allowed
// before: no lasting pin) separates them at once.
// Returns false when there is no other core to go to.
bool move_off_this_core(int cpu) {
#ifdef SGDX_MOVE_CROWDED_WORKERS
    cpu_set_t allowed, others;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
    others = allowed;
    CPU_CLR(cpu, &others);
    if (CPU_COUNT(&others) == 0) return false;  // this core is all it may use
    if (sched_setaffinity(0, sizeof others, &others) == 0) sched_setaffinity(0, sizeof allowed, &allowed);
    return true;
#else
    (void)cpu;
    return false;
#endif
}

// Spins until done() or kHotMicroseconds pass, whichever is first. Bounded, and
// yielding now and then, so that a thread sharing this core (the machine loaded)
// still gets it.
template <class Done>
void watch_hot(Done&& done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(ThreadPool::kHotMicroseconds);
    for (unsigned spin = 1; !done(); ++spin) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (spin % 64 == 0) {
            if (std::chrono::steady_clock::now() >= until) return;
            if (spin % 1024 == 0) std::this_thread::yield();
        }
    }
}
}  // namespace

void ThreadPool::run_erased(size_t parts, Job job, void* ctx) {
    unsigned long generation;
    const bool pinned = pinned_;
    caller_cpu_.store(current_cpu(), std::memory_order_relaxed);  // published with the job
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = job;
        ctx_ = ctx;
        parts_ = parts;
        pinned_job_ = pinned;
        parts_done_ = 0;
        next_part_ = taken_.size();
        std::fill(taken_.begin(), taken_.end(), 0);
        generation = ++generation_;
    }
    wake_.notify_all();
    work_on(generation, job, ctx, 0, pinned, parts);
    // Parts a worker claimed may still run: ctx must outlive them. Watched first, as
    // the workers watch for jobs: the caller's own part usually ends a little before
    // the worker's (it starts first), and a caller asleep on done_ took 10-60 µs to
    // wake, a step after every job (the MLP's 2-thread step: median 81-134 µs from
    // run to run, least 77).
    watch_hot([&] { return parts_done_.load(std::memory_order_acquire) == parts; });
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return parts_done_ == parts_; });
}

void ThreadPool::worker_loop(size_t index) {
    unsigned long seen = 0;
    unsigned crowded = 0;  // jobs in a row this worker finished on the caller's core
    bool may_move = true;  // false once it found that core the only one it may use
    for (;;) {
        Job job;
        void* ctx;
        bool pinned;
        size_t parts;
        // A step's parallel parts come back to back (a CNN: ~16 per batch, every
        // layer split), with gaps of serial work of a few to ~100 µs (loss,
        // optimizer), and waking a sleeping thread costs 10-60 µs here: watch for
        // the next job for kHotMicroseconds first, so the worker stays hot for a
        // whole step.
        watch_hot([&] { return generation_.load(std::memory_order_acquire) != seen; });
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            job = job_;
            ctx = ctx_;
            pinned = pinned_job_;
            parts = parts_;
        }
        work_on(seen, job, ctx, index, pinned, parts);
        const int cpu = current_cpu();
        if (cpu < 0 || cpu != caller_cpu_.load(std::memory_order_relaxed)) {
            crowded = 0;
        } else if (may_move && ++crowded == kCrowdedJobs) {
            may_move = move_off_this_core(cpu);
            if (may_move) moves_.fetch_add(1, std::memory_order_relaxed);
            crowded = 0;
        }
    }
}

namespace {
std::unique_ptr<ThreadPool>& pool_slot() {
    static std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(1);
    return pool;
}
}  // namespace

ThreadPool& thread_pool() { return *pool_slot(); }

void set_num_threads(size_t threads) {
    if (threads == 0) threads = 1;
    if (pool_slot()->size() != threads) pool_slot() = std::make_unique<ThreadPool>(threads);
}

}  // namespace sgdx
