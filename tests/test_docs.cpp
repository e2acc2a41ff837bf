// The repository's references to its own math contract: every "math.md §N"
// in code, configs and docs names a section docs/math.md has, and nothing
// cites a contract outside the repository. Run from the repository root (as
// `make test` does).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// "## 1. The memory layer" -> "1", "### 1.4 Attentional bias" -> "1.4".
std::set<std::string> math_sections() {
    std::set<std::string> out;
    std::istringstream in(read_text("docs/math.md"));
    static const std::regex heading(R"(^#{2,3} (\d+(?:\.\d+)?)\.? .*)");
    std::string line;
    std::smatch m;
    while (std::getline(in, line))
        if (std::regex_match(line, m, heading)) out.insert(m[1]);
    return out;
}

// The text files of the repository's own folders (no build output).
std::vector<fs::path> repository_text_files() {
    std::vector<fs::path> files = {"README.md", "Makefile"};
    static const std::set<std::string> exts = {".cpp", ".h", ".md", ".toml", ".py", ".sh", ""};
    for (const char* dir : {"tensor", "autograd", "nn", "miras", "train", "tests", "docs", ".ci"}) {
        if (!fs::is_directory(dir)) continue;
        for (const auto& e : fs::recursive_directory_iterator(dir))
            if (e.is_regular_file() && exts.count(e.path().extension().string())) files.push_back(e.path());
    }
    return files;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(docs)

BOOST_AUTO_TEST_CASE(math_md_references_name_existing_sections) {
    BOOST_REQUIRE_MESSAGE(fs::is_regular_file("docs/math.md"),
                          "docs/math.md not found: run the tests from the repository root");
    const std::set<std::string> sections = math_sections();
    BOOST_REQUIRE(sections.count("0") && sections.count("1.4") && sections.count("2") && sections.count("4"));
    // "math.md §1.1–1.2", "math.md §1.8, §4", "math.md §3's": every number after the file name.
    static const std::regex ref(R"(math\.md §\d+(?:\.\d+)?(?:(?:–|-)\d+(?:\.\d+)?|(?:,| and) §\d+(?:\.\d+)?)*)");
    static const std::regex num(R"(\d+(?:\.\d+)?)");
    int refs = 0;
    for (const fs::path& p : repository_text_files()) {
        const std::string text = read_text(p);
        for (auto it = std::sregex_iterator(text.begin(), text.end(), ref); it != std::sregex_iterator(); ++it) {
            const std::string nums = it->str().substr(7);  // after "math.md"
            for (auto n = std::sregex_iterator(nums.begin(), nums.end(), num); n != std::sregex_iterator(); ++n) {
                ++refs;
                BOOST_CHECK_MESSAGE(sections.count(n->str()),
                                    p.string() << ": cites math.md §" << n->str() << ", which docs/math.md does not have");
            }
        }
    }
    BOOST_TEST_MESSAGE(refs << " references to docs/math.md checked");
    BOOST_CHECK_GT(refs, 100);
}

BOOST_AUTO_TEST_CASE(no_reference_to_a_contract_outside_the_repository) {
    static const std::regex outside(R"(\bSPEC\b)");
    const std::vector<fs::path> files = repository_text_files();
    BOOST_CHECK_GT(files.size(), 100u);
    for (const fs::path& p : files) {
        if (p == fs::path("tests/test_docs.cpp")) continue;  // this file names what it looks for
        const std::string text = read_text(p);
        std::smatch m;
        if (std::regex_search(text, m, outside)) {
            const auto line = 1 + std::count(text.begin(), text.begin() + m.position(0), '\n');
            BOOST_ERROR(p.string() << ":" << line << ": cites \"SPEC\"; the contract is docs/math.md (cite its section)");
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
