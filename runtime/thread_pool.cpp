#include "thread_pool.hpp"

#include <memory>

namespace sgdx {

ThreadPool::ThreadPool(size_t threads) {
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

void ThreadPool::run_erased(size_t parts, Job job, void* ctx) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = job;
        ctx_ = ctx;
        parts_ = parts;
        pending_ = parts - 1;
        ++generation_;
    }
    wake_.notify_all();
    job(ctx, 0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
}

void ThreadPool::worker_loop(size_t index) {
    unsigned long seen = 0;
    for (;;) {
        Job job;
        void* ctx;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            if (index >= parts_) continue;
            job = job_;
            ctx = ctx_;
        }
        job(ctx, index);
        std::lock_guard<std::mutex> lock(mutex_);
        if (--pending_ == 0) done_.notify_one();
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
