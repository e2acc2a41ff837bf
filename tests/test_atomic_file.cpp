// train/atomic_file.h: a file is replaced whole or not at all, and a failed
// write says which file and which step failed, and leaves no temporary file.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/temp_dir.h"
#include "train/atomic_file.h"

using namespace miras;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The names in `dir`, to see that no "<name>.tmp.<pid>" is left behind.
std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> n;
    for (const auto& e : fs::directory_iterator(dir)) n.push_back(e.path().filename().string());
    std::sort(n.begin(), n.end());
    return n;
}

template <class Fn> std::string error_of(Fn f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(atomic_file)

BOOST_AUTO_TEST_CASE(writes_the_parts_and_replaces_the_old_file) {
    miras::testing::TempDir t("atomic");
    const std::string p = t.file("a.txt");
    write_file_atomically(p, {"hello ", "", "world\n"});
    BOOST_TEST(slurp(p) == "hello world\n");
    std::string big(3 << 20, 'x');  // more than one write() may take
    big[12345] = 'y';
    write_file_atomically(p, {"head", big});
    BOOST_TEST(slurp(p) == "head" + big);
    write_file_atomically(p, {});
    BOOST_TEST(slurp(p).empty());
    BOOST_TEST(names_in(t.dir) == std::vector<std::string>({"a.txt"}));
}

BOOST_AUTO_TEST_CASE(a_failed_write_names_the_file_and_cleans_up) {
    miras::testing::TempDir t("atomic");
    // No such folder: the temporary file cannot be created.
    const std::string missing = t.file("no/such/dir/f.txt");
    std::string e = error_of([&] { write_file_atomically(missing, {"x"}, "cannot write the log"); });
    BOOST_TEST(e.find("cannot write the log '" + missing + "'") != std::string::npos, e);
    BOOST_TEST(e.find("cannot create the temporary file") != std::string::npos, e);
    BOOST_TEST(e.find("No such file") != std::string::npos, e);
    // The target is a non-empty folder: the rename fails, the folder and its
    // content stay, and the temporary file is removed.
    const std::string folder = t.file("taken");
    fs::create_directories(folder);
    { std::ofstream(folder + "/inside") << "keep"; }
    e = error_of([&] { write_file_atomically(folder, {"new"}); });
    BOOST_TEST(e.find("cannot write '" + folder + "'") != std::string::npos, e);
    BOOST_TEST(e.find("cannot rename over it") != std::string::npos, e);
    BOOST_TEST(fs::is_directory(folder));
    BOOST_TEST(slurp(folder + "/inside") == "keep");
    BOOST_TEST(names_in(t.dir) == std::vector<std::string>({"taken"}));
}

BOOST_AUTO_TEST_SUITE_END()
