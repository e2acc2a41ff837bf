#pragma once
// A process-wide name -> entry table, the shape shared by the attentional
// biases, retentions and memory architectures: the names are the values of
// MemoryConfig's string fields, so an unknown one is a config error that
// lists the known names.
//
// Entries are added, never replaced or removed. That is what lets find()
// hand out a reference that stays valid after the lock is released (std::map
// never moves its nodes): a scan keeps a pointer to its bias and retention
// for its whole run, and a later registration must not pull them from under
// it. Adding a taken name is therefore an error.
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace miras {

template <class Entry>
class Registry {
public:
    // `kind` names what is looked up in the error messages ("attentional bias").
    Registry(std::string kind, std::vector<std::pair<std::string, Entry>> builtins) : kind_(std::move(kind)) {
        for (auto& [name, entry] : builtins) add(name, std::move(entry));
    }

    // Throws std::invalid_argument on an empty or already registered name.
    void add(const std::string& name, Entry entry) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (name.empty() || entries_.count(name))
            throw std::invalid_argument("cannot register " + kind_ + " '" + name + "': " +
                                        (name.empty() ? "empty name" : "name already taken"));
        entries_.emplace(name, std::move(entry));
    }

    bool has(const std::string& name) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return entries_.count(name) != 0;
    }

    // Sorted, so listings and error messages do not depend on registration order.
    std::vector<std::string> names() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return names_locked();
    }

    // Throws std::invalid_argument listing the known names if `name` is unknown.
    const Entry& find(const std::string& name) const {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = entries_.find(name);
        if (it == entries_.end()) {
            std::string known;
            for (const auto& n : names_locked()) known += (known.empty() ? "" : ", ") + n;
            throw std::invalid_argument("memory config: unknown " + kind_ + " '" + name + "' (known: " + known + ")");
        }
        return it->second;
    }

private:
    std::vector<std::string> names_locked() const {
        std::vector<std::string> out;
        for (const auto& [n, e] : entries_) out.push_back(n);
        return out;
    }

    std::string kind_;
    mutable std::mutex mutex_;
    std::map<std::string, Entry> entries_;
};

}  // namespace miras
