#pragma once
// Writing a file without ever losing the old one: the data goes to
// "<path>.tmp.<pid>" in the same folder, is fsync'ed, and is renamed over
// `path` (atomic on POSIX); then the folder is fsync'ed so the rename itself
// survives a crash. Until the rename the old file is untouched, so a failed
// or interrupted write leaves either the old content or the new, never a mix.
#include <string>
#include <string_view>
#include <vector>

namespace miras {

// Writes the parts one after another. On any failure removes the temporary
// file and throws std::runtime_error "<what> '<path>': <step> '<tmp>':
// <errno text>", e.g. "cannot write 'runs/x/config.toml': cannot create the
// temporary file 'runs/x/config.toml.tmp.123': No such file or directory".
void write_file_atomically(const std::string& path, const std::vector<std::string_view>& parts,
                           const std::string& what = "cannot write");

}  // namespace miras
