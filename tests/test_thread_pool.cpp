// The pool behind --threads: each part runs once, any free thread may take any
// part (so a worker the OS wakes late costs nothing), and pinned parts stay on
// their own thread (prepare() relies on it to size every thread's scratch).
#include <doctest/doctest.h>

#include <iostream>  // doctest prints std::thread::id through it

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "runtime/thread_pool.hpp"

using namespace sgdx;

TEST_CASE("ThreadPool runs every part exactly once, more parts than threads too") {
    ThreadPool pool(3);
    for (size_t parts : {1, 2, 3, 7, 64}) {
        CAPTURE(parts);
        std::vector<std::atomic<int>> runs(parts);
        for (int rep = 0; rep < 20; ++rep) pool.run(parts, [&](size_t p) { runs[p]++; });
        bool once_each = true;
        for (auto& r : runs) once_each = once_each && r.load() == 20;
        CHECK(once_each);
    }
}

TEST_CASE("ThreadPool: the caller takes the parts a sleeping worker has not started") {
    ThreadPool pool(2);
    // A part on the worker takes 300 ms (as if the OS had not run it): meanwhile
    // the caller must take all the others instead of waiting for it.
    const auto caller = std::this_thread::get_id();
    std::atomic<int> on_caller{0};
    pool.run(8, [&](size_t) {
        if (std::this_thread::get_id() != caller) std::this_thread::sleep_for(std::chrono::milliseconds(300));
        else on_caller++;
    });
    CHECK(on_caller.load() >= 7);
}

TEST_CASE("ThreadPool pinned: part p runs on thread p % size, the caller being thread 0") {
    ThreadPool pool(2);
    const auto caller = std::this_thread::get_id();
    pool.set_pinned(true);
    for (int rep = 0; rep < 20; ++rep) {
        std::vector<std::thread::id> ran_on(5);
        pool.run(5, [&](size_t p) { ran_on[p] = std::this_thread::get_id(); });
        CHECK(bool(ran_on[0] == caller));
        CHECK(bool(ran_on[2] == caller));
        CHECK(bool(ran_on[4] == caller));
        CHECK(bool(ran_on[1] != caller));
        CHECK(bool(ran_on[3] == ran_on[1]));
    }
    pool.set_pinned(false);
}

TEST_CASE("ThreadPool::parts_for: at most one part per thread, each of at least min_items") {
    ThreadPool one(1), two(2);
    CHECK(one.parts_for(64, 1) == 1);
    CHECK(two.parts_for(64, 1) == 2);
    CHECK(two.parts_for(64, 32) == 2);
    CHECK(two.parts_for(64, 33) == 1);  // two parts would hold fewer than 33
    CHECK(two.parts_for(1, 1) == 1);
    CHECK(two.parts_for(0, 4) == 1);
    CHECK(two.parts_for(10, 0) == 2);
}
