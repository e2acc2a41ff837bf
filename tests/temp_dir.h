#pragma once
// A fresh directory per test case under the system temp folder, removed
// afterwards. `tag` keeps suites apart in the name, the pid keeps parallel
// runs (e.g. the normal and the sanitized suite) apart.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace miras::testing {

struct TempDir {
    std::filesystem::path dir;
    explicit TempDir(const std::string& tag = "t") {
        static int counter = 0;
        dir = std::filesystem::temp_directory_path() /
              ("miras_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::create_directories(dir);
    }
    ~TempDir() { std::filesystem::remove_all(dir); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return (dir / name).string(); }
};

}  // namespace miras::testing
