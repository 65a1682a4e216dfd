#include "distill/util/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "distill/util/error.h"
#include "distill/util/lock.h"

namespace distill {

namespace fs = std::filesystem;

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  DISTILL_CHECK(fd >= 0, Error, "cannot open ", path, " to fsync: ", std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  DISTILL_CHECK(rc == 0, Error, "fsync of ", path, " failed: ", std::strerror(errno));
}

std::string parent_dir(const std::string& path) {
  auto p = fs::path(path).parent_path();
  return p.empty() ? "." : p.string();
}

void rename_durable(const std::string& src, const std::string& dst) {
  check_commit_allowed(dst);  // Note [orphaned ranks]
  DISTILL_CHECK(std::rename(src.c_str(), dst.c_str()) == 0, Error, "cannot rename ", src, " to ", dst, ": ",
                std::strerror(errno));
  fsync_path(parent_dir(dst));
}

void write_all(int fd, const std::string& content, const std::string& path) {
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    DISTILL_CHECK(n > 0, Error, "cannot write ", path, ": ", std::strerror(n < 0 ? errno : EIO));
    done += static_cast<std::size_t>(n);
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  DISTILL_CHECK(fd >= 0, Error, "cannot create ", tmp, ": ", std::strerror(errno));
  try {
    write_all(fd, content, tmp);
    DISTILL_CHECK(::fsync(fd) == 0, Error, "fsync of ", tmp, " failed: ", std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  const int rc = ::close(fd);
  const int err = errno;
  if (rc != 0) ::unlink(tmp.c_str());
  DISTILL_CHECK(rc == 0, Error, "cannot write ", tmp, ": ", std::strerror(err));
  try {
    rename_durable(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

void append_line(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  DISTILL_CHECK(fd >= 0, Error, "cannot open ", path, ": ", std::strerror(errno));
  const off_t before = ::lseek(fd, 0, SEEK_END);
  try {
    write_all(fd, line, path);
  } catch (...) {
    if (before >= 0 && ::ftruncate(fd, before) != 0) {
    }
    ::close(fd);
    throw;
  }
  DISTILL_CHECK(::close(fd) == 0, Error, "cannot write ", path, ": ", std::strerror(errno));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DISTILL_CHECK(in, Error, "cannot read ", path, ": ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool path_exists(const std::string& path) { return fs::exists(path); }

}  // namespace distill
