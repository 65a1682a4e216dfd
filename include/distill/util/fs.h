// File-system helpers for crash-safe writes: data goes to a temporary name, is flushed and fsynced,
// then renamed over the final name, and the directory is fsynced.
#pragma once
#include <string>

namespace distill {

// Writes `content` to `path` atomically. Throws distill::Error naming the path and the cause (e.g.
// "No space left on device") on failure, leaving no temporary file behind.
void write_file_atomic(const std::string& path, const std::string& content);
// Appends `line` (which ends in a newline) to `path` with one checked write; on failure the file is
// cut back to its previous length, so no torn line is left, and Error names the path and cause.
void append_line(const std::string& path, const std::string& line);
// Writes all of `content` to `fd` or throws Error naming `path` and the cause.
void write_all(int fd, const std::string& content, const std::string& path);
// fsyncs a file or directory by path.
void fsync_path(const std::string& path);
// Renames src to dst and fsyncs dst's directory. Refuses (Error) in a rank whose launcher died
// (Note [orphaned ranks], util/lock.h).
void rename_durable(const std::string& src, const std::string& dst);
std::string read_file(const std::string& path);
bool path_exists(const std::string& path);
std::string parent_dir(const std::string& path);

}  // namespace distill
