#include "distill/util/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <thread>

#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/log.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

pid_t g_launcher = 0;

bool pid_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

// The parent pid of a process of this host, or -1.
long parent_of(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  char state = 0;
  long ppid = -1;
  if (std::sscanf(stat.c_str() + close + 1, " %c %ld", &state, &ppid) != 2) return -1;
  return ppid;
}

// Creates the lock file exclusively; false when it exists.
bool try_create(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  write_file_atomic(tmp, content);
  // link() fails with EEXIST when the lock exists, atomically, also on NFS.
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int err = errno;
  ::unlink(tmp.c_str());
  if (rc == 0) return true;
  DISTILL_CHECK(err == EEXIST, Error, "cannot create the lock file ", path, ": ", std::strerror(err));
  return false;
}

}  // namespace

DirLock::DirLock(const std::string& dir, const std::string& job) {
  fs::create_directories(dir);
  path_ = (fs::path(dir) / ".distill.lock").string();
  const std::string host = host_name();
  const long pid = ::getpid();
  token_ = host + ":" + std::to_string(pid);
  const nlohmann::json me = {{"host", host},
                             {"pid", pid},
                             {"ppid", static_cast<long>(::getppid())},
                             {"job", job},
                             {"started", static_cast<long long>(std::time(nullptr))}};
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (try_create(path_, me.dump() + "\n")) return;
    nlohmann::json held;
    try {
      held = nlohmann::json::parse(read_file(path_));
    } catch (const std::exception&) {
      continue;  // removed or being written meanwhile: try again
    }
    const std::string h = held.value("host", "?");
    const long p = held.value("pid", 0L);
    const std::time_t started = static_cast<std::time_t>(held.value("started", 0LL));
    char when[32] = "?";
    std::tm tm{};
    if (gmtime_r(&started, &tm)) std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    const std::string who =
        str("pid ", p, " on ", h, " (", held.value("job", std::string("?")), ", started ", when, ")");
    DISTILL_CHECK(h == host, ConfigError, path_, " is held by ", who,
                  ": another job uses this directory. If that job is dead, remove ", path_);
    if (pid_alive(p) && parent_of(p) != held.value("ppid", -1L)) {
      // An orphaned rank of a killed job (Note [orphaned ranks]): it ends on its own, without committing.
      for (int i = 0; i < 100 && pid_alive(p); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    DISTILL_CHECK(!pid_alive(p), ConfigError, path_, " is held by ", who,
                  ", which is running: one job per directory; wait for it or use another directory");
    spdlog::warn("{}: taking over the lock of {}, which is no longer running", path_, who);
    fs::remove(path_);
  }
  throw ConfigError(str("cannot take the lock ", path_, ": it keeps changing hands"));
}

DirLock::~DirLock() {
  try {
    const auto held = nlohmann::json::parse(read_file(path_));
    if (held.value("host", "") + ":" + std::to_string(held.value("pid", 0L)) == token_) fs::remove(path_);
  } catch (const std::exception&) {
  }
}

int remove_stale_temporaries(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.find(".tmp-") == std::string::npos) continue;
    fs::remove_all(e.path(), ec);
    if (!ec) ++n;
  }
  return n;
}

void record_launcher() { g_launcher = ::getppid(); }

bool commit_allowed() { return g_launcher == 0 || ::getppid() == g_launcher; }

void check_commit_allowed(const std::string& what) {
  DISTILL_CHECK(commit_allowed(), Error, "the launcher of this rank (pid ", g_launcher, ") is gone; not committing ",
                what);
}

}  // namespace distill
