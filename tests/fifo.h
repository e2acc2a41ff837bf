#pragma once
// Reading a FIFO must be refused, not block: a reader that opens one waits
// for a writer forever. fifo_error runs `read` on a thread; if it has not
// returned within `seconds`, it is taken to be stuck in open(), is released
// by opening and closing the FIFO for writing, and the result says so.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <string>

namespace miras::testing {

template <class F> std::string fifo_error(const std::string& fifo, F read, double seconds = 10) {
    auto result = std::async(std::launch::async, [&]() -> std::string {
        try {
            read();
        } catch (const std::exception& e) {
            return e.what();
        }
        return "<no error>";
    });
    if (result.wait_for(std::chrono::duration<double>(seconds)) == std::future_status::timeout) {
        const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // succeeds: a reader is waiting
        if (fd >= 0) ::close(fd);
        result.wait();
        return "<blocked on the FIFO>";
    }
    return result.get();
}

}  // namespace miras::testing
