#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

#include "tests/cpu_time.h"
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fifo.h"
#include "tests/temp_dir.h"
#include "train/config.h"

using namespace miras;
namespace fs = std::filesystem;

using miras::test::error_of;

namespace {

const char* const kSample = R"(seed = 7

[optim]
lr = 0.003
steps = 1000
warmup = 10
name = "adamw"

[model]
mixer = "mag"
d = 64
layers = [1, 2, 4]
betas = [0.9, 1]
tie = true
)";

// Writes `text` to a fresh file; removed at scope end.
struct TempConfig {
    std::string path;
    explicit TempConfig(const std::string& text) {
        path = (fs::temp_directory_path() / ("miras_cfg_" + std::to_string(::getpid()) + ".toml")).string();
        std::ofstream(path) << text;
    }
    ~TempConfig() { fs::remove(path); }
};

// The same schema reads the sample and anything dumped from it.
void read_sample_schema(ConfigReader& c) {
    c.get_int("seed", 0, 0, 1 << 30);
    c.get_double("optim.lr", 1e-3, 0, 10);
    c.get_int("optim.steps", 1, 1, 1'000'000);
    c.get_int("optim.warmup", 0, 0, 1'000'000);
    c.get_string("optim.name", "sgd", {"sgd", "adamw"});
    c.get_string("model.mixer", "lmm", {"attn", "lmm", "mag", "mal", "mac"});
    c.get_int("model.d", 32, 1, 4096);
    c.get_int_list("model.layers", {}, 0, 100);
    c.get_double_list("model.betas", {0.9, 0.999}, 0, 1);
    c.get_bool("model.tie", false);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(reads_typed_values_and_defaults) {
    TempConfig f(kSample);
    ConfigReader c(f.path);
    BOOST_TEST(c.source() == f.path);
    BOOST_TEST(c.get_double("optim.lr", 1e-3, 0, 10) == 0.003);
    BOOST_TEST(c.get_int("optim.steps", 1, 1, 1'000'000) == 1000);
    BOOST_TEST(c.get_double("optim.warmup", 0, 0, 100) == 10.0);  // integers are numbers too
    BOOST_TEST(c.get_string("model.mixer", "lmm", {"attn", "lmm", "mag"}) == "mag");
    BOOST_TEST(c.get_bool("model.tie", false) == true);
    BOOST_TEST(c.get_int_list("model.layers", {}, 0, 10) == std::vector<int64_t>({1, 2, 4}));
    BOOST_TEST(c.get_double_list("model.betas", {}, 0, 1) == std::vector<double>({0.9, 1.0}));
    BOOST_TEST(c.get_double("optim.eps", 1e-8, 0, 1) == 1e-8);
    BOOST_TEST(c.get_string("run.name", "default") == "default");
    BOOST_TEST(c.has("optim.name"));
    BOOST_TEST(!c.has("optim.eps"));
    BOOST_TEST(!c.has("nothing.here"));
}

BOOST_AUTO_TEST_CASE(file_errors) {
    BOOST_TEST(error_of<std::runtime_error>([] { ConfigReader c("no/such/x.toml"); }) == "config file 'no/such/x.toml' not found");
    TempConfig bad("[optim]\nlr = = 3\n");
    const std::string msg = error_of<std::runtime_error>([&] { ConfigReader c(bad.path); });
    BOOST_TEST(msg.find(bad.path + ": invalid TOML: ") == 0u);
    BOOST_TEST(
        error_of<std::runtime_error>([] { ConfigReader::from_string("a = 1\na = 2\n", "dup.toml"); }).find("dup.toml: invalid TOML") == 0u);
}

// A FIFO as the config blocked forever (the file was opened before its type
// was checked); a file that could not be opened was "not found" or "cannot
// be read" without the reason.
BOOST_AUTO_TEST_CASE(special_and_unopenable_files_are_refused_with_the_reason) {
    miras::testing::TempDir tmp("cfg");
    const std::string fifo = tmp.file("fifo.toml");
    BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    BOOST_TEST(miras::testing::fifo_error(fifo, [&] { ConfigReader c(fifo); }) ==
               "config file '" + fifo + "' is not a regular file");
    BOOST_TEST(error_of<std::runtime_error>([] { ConfigReader c("/dev/zero"); }) ==
               "config file '/dev/zero' is not a regular file");
    BOOST_TEST(error_of<std::runtime_error>([&] { ConfigReader c(tmp.dir.string()); }) ==
               "config file '" + tmp.dir.string() + "' is not a regular file");
    TempConfig file("a = 1\n");
    BOOST_TEST(error_of<std::runtime_error>([&] { ConfigReader c(file.path + "/x.toml"); }) ==
               "config file '" + file.path + "/x.toml' cannot be opened: Not a directory");
    const std::string loop = tmp.file("loop.toml");
    fs::create_symlink(loop, loop);
    BOOST_TEST(error_of<std::runtime_error>([&] { ConfigReader c(loop); }) ==
               "config file '" + loop + "' cannot be opened: Too many levels of symbolic links");
}

BOOST_AUTO_TEST_CASE(every_value_error_names_file_key_expectation_and_value) {
    ConfigReader c = ConfigReader::from_string(
        "[optim]\nlr = \"abc\"\nbig = 11.5\nsteps = 2.5\nn = 0\nflag = 1\nmixer = \"lmn\"\nlist = [1, \"x\"]\n"
        "notlist = 3\nfloats = [0.5, 2]\n[model]\nd = 4\n",
        "x.toml");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_double("optim.lr", 1, 0, 10); }) ==
               "x.toml: key 'optim.lr' (line 2) must be a number in [0, 10], got string \"abc\"");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_double("optim.big", 1, 0, 10); }) ==
               "x.toml: key 'optim.big' (line 3) must be a number in [0, 10], got float 11.5");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_int("optim.steps", 1, 1, 100); }) ==
               "x.toml: key 'optim.steps' (line 4) must be an integer in [1, 100], got float 2.5");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_int("optim.n", 1, 1, 100); }) ==
               "x.toml: key 'optim.n' (line 5) must be an integer in [1, 100], got integer 0");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_bool("optim.flag", false); }) ==
               "x.toml: key 'optim.flag' (line 6) must be a boolean (true or false), got integer 1");
    BOOST_TEST(error_of<std::runtime_error>([&] {
                   c.get_string("optim.mixer", "lmm", {"attn", "lmm"});
               }) == "x.toml: key 'optim.mixer' (line 7) must be one of \"attn\", \"lmm\", got string \"lmn\"");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_string("optim.n", ""); }) ==
               "x.toml: key 'optim.n' (line 5) must be a string, got integer 0");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_int_list("optim.list", {}, 0, 9); }) ==
               "x.toml: key 'optim.list' (line 8) must be an array of integers in [0, 9], got array [1, \"x\"]");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_int_list("optim.notlist", {}, 0, 9); }) ==
               "x.toml: key 'optim.notlist' (line 9) must be an array of integers in [0, 9], got integer 3");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_double_list("optim.floats", {}, 0, 1); }) ==
               "x.toml: key 'optim.floats' (line 10) must be an array of numbers in [0, 1], got array [0.5, 2]");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_int("model", 1, 0, 9); }).find("must be an integer in [0, 9], got table") !=
               std::string::npos);
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_int("model.d.x", 1, 0, 9); }) ==
               "x.toml: key 'model.d.x' needs 'model.d' to be a table, but it is integer 4");

    // Defaults that break their own range are bugs in the schema, not the file.
    BOOST_CHECK_THROW(c.get_double("a", 11, 0, 10), std::logic_error);
    BOOST_CHECK_THROW(c.get_int("a", -1, 0, 10), std::logic_error);
    BOOST_CHECK_THROW(c.get_string("a", "x", {"y"}), std::logic_error);
    BOOST_CHECK_THROW(c.get_int("bad key", 0, 0, 1), std::logic_error);
}

// toml11 reads a decimal, hex or octal literal beyond 64 bits as ±(2^63 − 1)
// and wraps a binary one: each must be refused with the text as written.
BOOST_AUTO_TEST_CASE(integers_beyond_64_bits_are_refused_as_written) {
    ConfigReader c = ConfigReader::from_string(
        "[t]\ndec = 99999999999999999999\nneg = -99999999999999999999\nhex = 0x1_0000_0000_0000_0000\n"
        "oct = 0o7777777777777777777777\nbin = 0b111_1111\n"
        "max = 9_223_372_036_854_775_807\nmin = -9223372036854775808\nxmax = 0x7fff_ffff_ffff_ffff\nplus = +12\n"
        "list = [1, 99999999999999999999]\n",
        "x.toml");
    const int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_int("t.dec", 1, 0, kMax); }) ==
               "x.toml: key 't.dec' (line 2) must be an integer in [0, 9223372036854775807], got integer "
               "99999999999999999999, beyond 64 bits");
    for (const char* key : {"t.neg", "t.hex", "t.oct"})
        BOOST_TEST(error_of<std::runtime_error>([&] { c.get_int(key, 1, kMin, kMax); }).find("beyond 64 bits") !=
                       std::string::npos,
                   key);
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_double("t.dec", 1, 0, 1e300); }).find("beyond 64 bits") !=
               std::string::npos);
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_int_list("t.list", {}, 0, kMax); }).find("must be an array") !=
               std::string::npos);
    BOOST_TEST(c.get_int("t.max", 1, 0, kMax) == kMax);  // the bounds themselves are fine
    BOOST_TEST(c.get_int("t.min", -1, kMin, 0) == kMin);
    BOOST_TEST(c.get_int("t.xmax", 1, 0, kMax) == kMax);
    BOOST_TEST(c.get_int("t.plus", 1, 0, 100) == 12);
    BOOST_TEST(c.get_int("t.bin", 1, 0, 1000) == 127);
    // The TOML reader overflows on binary literals from the 63rd digit
    // (leading zeros too), so they are refused before it reads them, in a
    // file and in an override; 62 digits are read.
    const std::string b65 = "0b" + std::string(65, '1'), b63 = "0b" + std::string(63, '0');
    for (const std::string& lit : {b65, b63, "0b1_" + std::string(62, '0')}) {
        const std::string err = error_of<std::runtime_error>([&] { ConfigReader::from_string("[t]\nb = " + lit + "\n", "z.toml"); });
        BOOST_TEST(err.find("z.toml: line 2: binary integer") != std::string::npos, err);
        BOOST_TEST(err.find("at most 62") != std::string::npos, err);
        const std::string err2 =
            error_of<std::runtime_error>([&] { ConfigReader::from_string("", "y.toml", {"train.steps=" + lit}); });
        BOOST_TEST(err2.find("binary integer") != std::string::npos, err2);
    }
    const std::string b62 = "0b1" + std::string(61, '0');  // 2^61
    BOOST_TEST(ConfigReader::from_string("[t]\nb = " + b62 + "\n", "z.toml").get_int("t.b", 1, 0, kMax) ==
               int64_t(1) << 61);

    ConfigReader o = ConfigReader::from_string("", "y.toml", {"train.steps=99999999999999999999"});
    BOOST_TEST(error_of<std::runtime_error>([&] { o.get_int("train.steps", 1, 0, kMax); }) ==
               "y.toml: key 'train.steps' (from override 'train.steps=99999999999999999999') must be an integer in "
               "[0, 9223372036854775807], got integer 99999999999999999999, beyond 64 bits");
}

BOOST_AUTO_TEST_CASE(overrides_are_parsed_as_toml_values) {
    TempConfig f(kSample);
    ConfigReader c(f.path,
                   {"optim.lr=3e-4", "optim.name=sgd", "model.mixer=\"attn\"", "model.tie=false", "model.layers=[3, 5]",
                    "seed = 9", "eval.every=100", "optim.lr=5e-4", "run.tag=hello world"});
    BOOST_TEST(c.get_double("optim.lr", 1, 0, 10) == 5e-4);  // the last override wins
    BOOST_TEST(c.get_string("optim.name", "adamw", {"sgd", "adamw"}) == "sgd");
    BOOST_TEST(c.get_string("model.mixer", "") == "attn");
    BOOST_TEST(c.get_bool("model.tie", true) == false);
    BOOST_TEST(c.get_int_list("model.layers", {}, 0, 9) == std::vector<int64_t>({3, 5}));
    BOOST_TEST(c.get_int("seed", 0, 0, 100) == 9);
    BOOST_TEST(c.get_int("eval.every", 1, 1, 1000) == 100);  // a new section
    BOOST_TEST(c.get_string("run.tag", "") == "hello world");

    ConfigReader d(f.path, {"optim.lr=abc"});
    BOOST_TEST(error_of<std::runtime_error>([&] { d.get_double("optim.lr", 1, 0, 10); }) ==
               f.path +
                   ": key 'optim.lr' (from override 'optim.lr=abc') must be a number in [0, 10], got string \"abc\"");

    auto override_error = [&](const std::string& o) { return error_of<std::runtime_error>([&] { ConfigReader e(f.path, {o}); }); };
    BOOST_TEST(override_error("optim.lr") == f.path + ": override 'optim.lr' must look like section.key=value");
    BOOST_TEST(override_error("optim..lr=1").find("is not a dotted key") != std::string::npos);
    BOOST_TEST(override_error("=1").find("is not a dotted key") != std::string::npos);
    BOOST_TEST(override_error("optim.lr=") ==
               f.path + ": override 'optim.lr=' has no value (write optim.lr=\"\" for an empty string)");
    BOOST_TEST(override_error("optim.lr.x=1") ==
               f.path + ": override 'optim.lr.x=1': 'optim.lr' is float 0.003, not a table");
    BOOST_TEST(override_error("optim.lr=1\nw = 2") ==
               f.path + ": override 'optim.lr=1\nw = 2': the value must be a single TOML value");
    BOOST_TEST(override_error("optim=1") == f.path + ": override 'optim=1' would replace the table 'optim'");
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_all_reported) {
    TempConfig f(std::string(kSample) + "[extra]\n\n[optim2]\nlrr = 1\n");
    ConfigReader c(f.path, {"model.dd=3"});
    read_sample_schema(c);
    BOOST_TEST(error_of<std::runtime_error>([&] { c.check_no_unknown_keys(); }) ==
               f.path +
                   ": unknown keys (not part of the schema): 'extra' (line 15), 'model.dd' (from override "
                   "'model.dd=3'; did you mean 'model.d'?), 'optim2.lrr' (line 18; did you mean 'optim.lr'?)");

    ConfigReader ok(f.path);
    read_sample_schema(ok);
    ok.get_int("optim2.lrr", 0, 0, 9);
    BOOST_TEST(error_of<std::runtime_error>([&] { ok.check_no_unknown_keys(); }).find("'extra' (line 15)") != std::string::npos);
    ok.get_int("extra.x", 0, 0, 9);  // an empty section of the schema is fine
    BOOST_CHECK_NO_THROW(ok.check_no_unknown_keys());

    ConfigReader one = ConfigReader::from_string("a = 1\nb = 2\n", "one.toml");
    one.get_int("a", 0, 0, 9);
    BOOST_TEST(error_of<std::runtime_error>([&] { one.check_no_unknown_keys(); }) ==
               "one.toml: unknown key (not part of the schema): 'b' (line 2)");
    one.get_int("b", 0, 0, 9);
    BOOST_CHECK_NO_THROW(one.check_no_unknown_keys());
}

// The line of every unknown key was found by counting newlines from the
// start of the file (toml11's region::line_num): 100,000 unknown empty
// tables took 174 s and made a 2.28 MB message. Now the first ten are
// listed with their lines and the rest counted.
BOOST_AUTO_TEST_CASE(many_unknown_keys_are_counted_fast) {
    const int n = 100'000;
    std::string text = "a = 1\n";
    char table[32];
    for (int i = 0; i < n; ++i) {
        std::snprintf(table, sizeof table, "[t%06d]\n", i);
        text += table;
    }
    ConfigReader c = ConfigReader::from_string(text, "many.toml");
    c.get_int("a", 0, 0, 9);
    const auto t0 = miras::testing::thread_cpu_seconds();
    const std::string msg = error_of<std::runtime_error>([&] { c.check_no_unknown_keys(); });
    const double seconds = miras::testing::thread_cpu_seconds() - t0;
    BOOST_TEST(msg.find("many.toml: unknown keys (not part of the schema): 't000000' (line 2), 't000001' (line 3), ") ==
               0u, msg);
    BOOST_TEST(msg.find("'t000009' (line 11), and 99990 more") != std::string::npos, msg);
    BOOST_TEST(msg.find("t000010") == std::string::npos, msg);
    BOOST_TEST(msg.size() < 400u);
    BOOST_TEST(seconds < 5.0);
}

// Twice the same key took the last value silently (a run meant for lr 1e-3
// ran at 3e-3); long values were echoed whole (a 100,000-character override
// made a 100 KB message).
BOOST_AUTO_TEST_CASE(overrides_give_each_key_once_and_long_values_are_cut) {
    auto error = [](const std::vector<std::string>& o) {
        return error_of<std::runtime_error>([&] { ConfigReader::from_string("[optim]\nlr = 0.1\n", "x.toml", o); });
    };
    auto distinct_error = [](const std::vector<std::string>& o) {
        return error_of<std::runtime_error>([&] { check_overrides_distinct(o); });
    };
    BOOST_TEST(distinct_error({"optim.lr=1e-3", "train.steps=5", "optim.lr=3e-3"}) ==
               "--set 'optim.lr=3e-3': 'optim.lr' is already set by --set 'optim.lr=1e-3'; give each key once");
    BOOST_TEST(distinct_error({"optim.lr=1", " optim.lr = 2"}).find("already set by --set 'optim.lr=1'") !=
               std::string::npos);
    BOOST_CHECK_NO_THROW(check_overrides_distinct({"optim.lr=1", "optim.beta=2", "optim.lr", "optim.lr"}));
    const std::string huge(100'000, '7');
    ConfigReader c = ConfigReader::from_string("", "x.toml", {"optim.name=\"" + huge + "\""});
    const std::string msg = error_of<std::runtime_error>([&] { c.get_string("optim.name", "adam", {"adam", "sgd"}); });
    BOOST_TEST(msg.find("x.toml: key 'optim.name' (from override 'optim.name=\"7777") == 0u, msg);
    BOOST_TEST(msg.find("... (100013 bytes)') must be one of \"adam\", \"sgd\", got string \"777") != std::string::npos,
               msg);
    BOOST_TEST(msg.find("... (100009 bytes)") != std::string::npos, msg);
    BOOST_TEST(msg.size() < 400u, msg.size());
    BOOST_TEST(distinct_error({"optim." + huge + "=1", "optim." + huge + "=2"}).size() < 400u);
    BOOST_TEST(error({huge + "="}).size() < 400u);
}

// toml11 reads 1e-400 as 0 and 1e400 as the largest double, without an
// error: optim.lr = 1e-400 trained at a learning rate of 0.
BOOST_AUTO_TEST_CASE(floats_beyond_a_double_are_refused) {
    ConfigReader c = ConfigReader::from_string("tiny = 1e-400\nneg = -2.5e-999\nbig = 1e400\nsub = 1e-310\nzero = 0.0e-400\n"
                                               "list = [1.0, 1e-400]\nu = 1_0e-4_00\n",
                                               "x.toml", {"optim.lr=1e-400"});
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_double("optim.lr", 1e-3, 0, 10); }) ==
               "x.toml: key 'optim.lr' (from override 'optim.lr=1e-400') must be a number in [0, 10], got float "
               "1e-400, beyond the range of a double (it would be read as 0)");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_double("tiny", 1, 0, 10); }) ==
               "x.toml: key 'tiny' (line 1) must be a number in [0, 10], got float 1e-400, beyond the range of a "
               "double (it would be read as 0)");
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_double("neg", 1, -10, 10); }).find("got float -2.5e-999, beyond") !=
               std::string::npos);
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_double("big", 1, 0, 1.7976931348623157e308); })
                   .find("got float 1e400, beyond the range of a double (it would be read as 1.79769") !=
               std::string::npos);
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_double_list("list", {}, 0, 10); }).find("key 'list'") !=
               std::string::npos);
    BOOST_TEST(error_of<std::runtime_error>([&] { c.get_double("u", 1, 0, 10); }).find("got float 1_0e-4_00, beyond") !=
               std::string::npos);
    BOOST_TEST(c.get_double("sub", 1, 0, 10) == 1e-310);  // subnormal, but held
    BOOST_TEST(c.get_double("zero", 1, 0, 10) == 0.0);   // a zero is a zero
}

BOOST_AUTO_TEST_CASE(dump_holds_every_value_used_and_reads_back) {
    ConfigReader c = ConfigReader::from_string(kSample, "x.toml", {"optim.lr=0.1"});
    read_sample_schema(c);
    c.get_double("optim.eps", 1e-300, 0, 1);
    c.get_double("optim.wd", 3, 0, 10);
    c.get_string("run.note", "say \"hi\"\n\tback\\slash");
    c.check_no_unknown_keys();
    const std::string dump = c.dump_toml();
    BOOST_TEST(dump ==
               "seed = 7\n"
               "\n[model]\nbetas = [0.9, 1.0]\nd = 64\nlayers = [1, 2, 4]\nmixer = \"mag\"\ntie = true\n"
               "\n[optim]\neps = 1e-300\nlr = 0.1\nname = \"adamw\"\nsteps = 1000\nwarmup = 10\nwd = 3.0\n"
               "\n[run]\nnote = \"say \\\"hi\\\"\\n\\tback\\\\slash\"\n");

    ConfigReader back = ConfigReader::from_string(dump, "dump.toml");
    read_sample_schema(back);
    BOOST_TEST(back.get_double("optim.lr", 1, 0, 1) == 0.1);
    BOOST_TEST(back.get_double("optim.eps", 1, 0, 1) == 1e-300);
    BOOST_TEST(back.get_double("optim.wd", 0, 0, 10) == 3.0);
    BOOST_TEST(back.get_string("run.note", "") == "say \"hi\"\n\tback\\slash");
    BOOST_CHECK_NO_THROW(back.check_no_unknown_keys());
    BOOST_TEST(back.dump_toml() == dump);
}

// toml11 recurses once per nested array or inline table (50,000 '['
// overflowed the stack) and takes time quadratic in a dotted key's length
// (100,000 parts: minutes). Both are refused before parsing; the same text
// inside strings and comments is not.
BOOST_AUTO_TEST_CASE(deep_nesting_and_long_dotted_keys_are_refused) {
    auto parse_error = [](const std::string& text) {
        return error_of<std::runtime_error>([&] { ConfigReader::from_string(text, "deep.toml"); });
    };
    const size_t n = 50'000;
    BOOST_TEST(parse_error("a = 1\nb = " + std::string(n, '[') + std::string(n, ']') + "\n") ==
               "deep.toml: invalid TOML: line 2 nests arrays or inline tables more than 32 deep");
    std::string tables = "t = ";
    for (size_t i = 0; i < n; ++i) tables += "{a = ";
    BOOST_TEST(parse_error(tables + "1" + std::string(n, '}')) ==
               "deep.toml: invalid TOML: line 1 nests arrays or inline tables more than 32 deep");
    std::string key = "a";
    for (size_t i = 1; i < n; ++i) key += ".a";
    BOOST_TEST(parse_error("\n" + key + " = 1\n") ==
               "deep.toml: invalid TOML: line 2 has a dotted key of more than 32 parts");
    BOOST_TEST(parse_error("[" + key + "]\n") == "deep.toml: invalid TOML: line 1 has a dotted key of more than 32 parts");
    std::string quoted = "\"a\"";
    for (size_t i = 1; i < n; ++i) quoted += i % 2 ? ". 'a'" : " . \"a\"";
    BOOST_TEST(parse_error(quoted + " = 1\n") == "deep.toml: invalid TOML: line 1 has a dotted key of more than 32 parts");
    // Within the limits, and the same characters in strings and comments, are fine.
    std::string k32 = "k";
    for (int i = 1; i < 32; ++i) k32 += ".k";
    const std::string brackets(100, '['), dots(100, '.');
    ConfigReader ok = ConfigReader::from_string(
        "a = " + std::string(32, '[') + "1" + std::string(32, ']') + "\n" + k32 + " = 2\n" +  //
            "s = \"" + brackets + dots + "\\\"" + brackets + "\"  # " + brackets + dots + "\n" +  //
            "l = '" + brackets + dots + "\\'\n" +                                                   //
            "m = \"\"\"\n" + brackets + "\"\"\n" + dots + "\"\"\"\"\"\n" +                          //
            "n = '''" + brackets + "\n" + dots + "''''\n" +                                           //
            "f = 1.5\ng = 2e3\nd = 1979-05-27T07:32:00.999Z\nt = 07:32:00.5\n" +                              //
            "line = " + std::string(30, '[') + std::string(30, ']') + "\n",
        "ok.toml");
    BOOST_TEST(ok.get_int(k32, 0, 0, 9) == 2);
    BOOST_TEST(ok.get_string("s", "") == brackets + dots + "\"" + brackets);
    BOOST_TEST(ok.get_string("l", "") == brackets + dots + "\\");
    BOOST_TEST(ok.get_string("m", "") == brackets + "\"\"\n" + dots + "\"\"");
    BOOST_TEST(ok.get_string("n", "") == brackets + "\n" + dots + "'");
    // The same limits hold for a --set override.
    TempConfig f(kSample);
    BOOST_TEST(error_of<std::runtime_error>([&] { ConfigReader c(f.path, {"optim.lr=" + std::string(n, '[')}); }) ==
               f.path + ": override 'optim.lr=" + std::string(71, '[') + "... (" + std::to_string(9 + n) +
                   " bytes)': invalid TOML: line 1 nests arrays or inline tables more than 32 deep");
    BOOST_TEST(error_of<std::runtime_error>([&] { ConfigReader c(f.path, {k32 + ".k=1"}); }) ==
               f.path + ": override '" + k32 + ".k=1': the key has more than 32 parts");
}

// An invalid UTF-8 sequence inside a '...' or '''...''' string made toml11
// read past the end of a buffer while composing its error. TOML files must be UTF-8; anything else is refused
// first, naming the line and the offset.
BOOST_AUTO_TEST_CASE(invalid_utf8_is_refused_before_parsing) {
    auto parse_error = [](const std::string& text) {
        return error_of<std::runtime_error>([&] { ConfigReader::from_string(text, "u.toml"); });
    };
    BOOST_TEST(parse_error("a = 1\nb = '''a\xf6\x9d\xd8'''\n") ==
               "u.toml: invalid TOML: line 2 is not valid UTF-8 (byte 0xf6 at offset 14)");
    BOOST_TEST(parse_error("b = 'a\xf6'\n").find("u.toml: invalid TOML: line 1 is not valid UTF-8 (byte 0xf6") == 0u);
    BOOST_TEST(parse_error("b = \"\xc3\"\n").find("not valid UTF-8 (byte 0xc3 at offset 5)") != std::string::npos);
    BOOST_TEST(parse_error("b = \"\"\"\n\xff\"\"\"\n").find("line 2 is not valid UTF-8 (byte 0xff") != std::string::npos);
    BOOST_TEST(parse_error("# \xc0\x80 overlong\n").find("not valid UTF-8 (byte 0xc0") != std::string::npos);
    BOOST_TEST(parse_error("a = '\xed\xa0\x80'\n").find("not valid UTF-8 (byte 0xed") != std::string::npos);  // a surrogate
    BOOST_TEST(parse_error("a = '\xf4\x90\x80\x80'\n").find("not valid UTF-8 (byte 0xf4") != std::string::npos);  // > U+10FFFF
    BOOST_TEST(parse_error("a = 'ab\xe2\x82'").find("not valid UTF-8 (byte 0xe2 at offset 7)") != std::string::npos);  // cut at the end
    TempConfig f(kSample);
    BOOST_TEST(error_of<std::runtime_error>([&] { ConfigReader c(f.path, {"run.tag='\xf6'"}); }) ==
               f.path + ": override 'run.tag='\xf6'': invalid TOML: line 1 is not valid UTF-8 (byte 0xf6 at offset 1)");
    // Every valid sequence length passes, in strings, literal strings and comments.
    ConfigReader ok = ConfigReader::from_string(
        "a = \"\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80\"\nb = '''\xf4\x8f\xbf\xbf'''  # \xc3\xa9\n", "ok.toml");
    BOOST_TEST(ok.get_string("a", "") == "\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80");
    BOOST_TEST(ok.get_string("b", "") == "\xf4\x8f\xbf\xbf");
}

// A preset and a task file could not be combined; now files layer in order:
// a later file's key replaces an earlier one's, tables merge key by key,
// overrides come last, and a key a later file changes is noted.
BOOST_AUTO_TEST_CASE(files_layer_in_order_and_overrides_come_last) {
    miras::testing::TempDir tmp("cfg");
    const std::string a = tmp.file("a.toml"), b = tmp.file("b.toml");
    std::ofstream(a) << "[model]\nd = 32\nmixer = \"lmm\"\n[optim]\nlr = 0.005\nwarmup = 3\n";
    std::ofstream(b) << "[optim]\nlr = 0.002\n[train]\nsteps = 7\n";
    ConfigReader c({a, b}, {"train.steps=9"});
    BOOST_TEST(c.source() == a + " + " + b);
    BOOST_TEST(c.get_int("model.d", 1, 1, 99) == 32);                   // a alone
    BOOST_TEST(c.get_string("model.mixer", "attn") == "lmm");           // a alone
    BOOST_TEST(c.get_double("optim.lr", 1, 0, 1) == 0.002);             // b over a
    BOOST_TEST(c.get_int("optim.warmup", 0, 0, 99) == 3);               // a's table kept beside b's key
    BOOST_TEST(c.get_int("train.steps", 1, 1, 99) == 9);                // the override over b
    BOOST_REQUIRE_EQUAL(c.layer_notes().size(), 1u);
    BOOST_TEST(c.layer_notes()[0] == b + " sets optim.lr = 0.002 over 0.005 from " + a);
    BOOST_CHECK_NO_THROW(c.check_no_unknown_keys());

    // The other order: a's value wins. A key set to the same value is no note.
    ConfigReader back({b, a}, {});
    BOOST_TEST(back.get_double("optim.lr", 1, 0, 1) == 0.005);
    std::ofstream(tmp.file("same.toml")) << "[optim]\nlr = 0.002\n";
    BOOST_TEST(ConfigReader({b, tmp.file("same.toml")}, {}).layer_notes().empty());

    // A bad value names the file (and line) it came from, not only the stack.
    std::ofstream(tmp.file("bad.toml")) << "\n[model]\nd = \"big\"\n";
    ConfigReader bad({a, tmp.file("bad.toml")}, {});
    const std::string msg = error_of<std::runtime_error>([&] { bad.get_int("model.d", 1, 1, 99); });
    BOOST_TEST(msg.find("key 'model.d' (" + tmp.file("bad.toml") + ", line 3) must be an integer") != std::string::npos,
               msg);
    // A key that is a table in one file and a value in another cannot merge.
    std::ofstream(tmp.file("flat.toml")) << "model = 3\n";
    const std::string clash = error_of<std::runtime_error>([&] { ConfigReader({a, tmp.file("flat.toml")}, {}); });
    BOOST_TEST(clash.find(tmp.file("flat.toml") + ": 'model' (line 1) is integer 3, but " + a + " has it as table") == 0u,
               clash);
    const std::string missing = error_of<std::runtime_error>([&] { ConfigReader({a, tmp.file("none.toml")}, {}); });
    BOOST_TEST(missing.find("none.toml' not found") != std::string::npos, missing);
}

// "unknown key" gave no hint (`--set train.warmup=2`, which is optim.warmup).
BOOST_AUTO_TEST_CASE(unknown_keys_suggest_the_nearest_known_ones) {
    const std::vector<std::string> known = {"optim.lr",     "optim.warmup",     "optim.weight_decay", "train.steps",
                                            "train.batch",  "model.mlp_hidden", "model.d",            "model.heads",
                                            "memory.fixed_gates.theta", "data.mqar.num_pairs"};
    using V = std::vector<std::string>;
    BOOST_TEST(nearest_keys("train.warmup", known) == V{"optim.warmup"});          // same name, other table
    BOOST_TEST(nearest_keys("optim.lrr", known) == V{"optim.lr"});                 // a typo
    BOOST_TEST(nearest_keys("train.stpes", known) == V{"train.steps"});            // two letters swapped
    BOOST_TEST(nearest_keys("model.hidden", known) == V{"model.mlp_hidden"});      // part of the name
    BOOST_TEST(nearest_keys("memory.fixed_gates.thetta", known) == V{"memory.fixed_gates.theta"});
    BOOST_TEST(nearest_keys("data.num_pairs", known) == V{"data.mqar.num_pairs"});  // a table level missing
    BOOST_TEST(nearest_keys("output.colour", known).empty());                       // nothing near
    BOOST_TEST(nearest_keys(std::string(100, 'x'), known).empty());

    // In the error: for a key of a file and for an override, with the keys
    // has() was asked about (the optional gates) among the known ones.
    ConfigReader c = ConfigReader::from_string("[optim]\nlr = 0.1\n[train]\nwarmup = 2\n", "w.toml",
                                               {"memory.fixed_gates.thetta=1"});
    c.get_double("optim.lr", 1e-3, 0, 10);
    c.get_int("optim.warmup", 0, 0, 10);
    BOOST_TEST(!c.has("memory.fixed_gates.theta"));
    const std::string msg = error_of<std::runtime_error>([&] { c.check_no_unknown_keys(); });
    BOOST_TEST(msg.find("'memory.fixed_gates.thetta' (from override 'memory.fixed_gates.thetta=1'; did you mean "
                        "'memory.fixed_gates.theta'?)") != std::string::npos, msg);
    BOOST_TEST(msg.find("'train.warmup' (line 4; did you mean 'optim.warmup'?)") != std::string::npos, msg);
}

BOOST_AUTO_TEST_SUITE_END()
