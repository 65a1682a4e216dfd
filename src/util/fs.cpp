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
  DISTILL_CHECK(std::rename(src.c_str(), dst.c_str()) == 0, Error, "cannot rename ", src, " to ", dst,
                ": ", std::strerror(errno));
  fsync_path(parent_dir(dst));
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    DISTILL_CHECK(out, Error, "cannot create ", tmp);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    DISTILL_CHECK(out, Error, "cannot write ", tmp);
  }
  fsync_path(tmp);
  rename_durable(tmp, path);
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
