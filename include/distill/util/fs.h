// File-system helpers for crash-safe writes: data goes to a temporary name, is flushed and fsynced,
// then renamed over the final name, and the directory is fsynced.
#pragma once
#include <string>

namespace distill {

// Writes `content` to `path` atomically. Throws distill::Error naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& content);
// fsyncs a file or directory by path.
void fsync_path(const std::string& path);
// Renames src to dst and fsyncs dst's directory.
void rename_durable(const std::string& src, const std::string& dst);
std::string read_file(const std::string& path);
bool path_exists(const std::string& path);
std::string parent_dir(const std::string& path);

}  // namespace distill
