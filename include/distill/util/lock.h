// One job per directory: a lock file (<dir>/.distill.lock) that names the host, pid and job holding
// it. A second job refuses to start with a message naming the holder; a lock left by a dead process
// of this host is taken over with a warning.
#pragma once
#include <string>

namespace distill {

class DirLock {
 public:
  // Creates `dir` if needed and takes its lock for `job` (e.g. "distill train -c run.yaml").
  // Throws ConfigError naming the lock file and its holder when another live job holds it.
  DirLock(const std::string& dir, const std::string& job);
  ~DirLock();  // removes the lock file if it is still this process's
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_, token_;
};

// Removes leftovers of interrupted atomic writes under `dir` (not recursive): entries whose name
// contains ".tmp-" (files or directories). Returns how many were removed. Call only while holding
// the directory's lock.
int remove_stale_temporaries(const std::string& dir);

// Note [orphaned ranks]: a rank whose launcher (mpirun) died must not commit anything. Records the
// parent process at start (call once, early, when launched by mpirun); commit_allowed() is false
// once the parent has changed (the rank was re-parented). Without a recorded parent it is true.
void record_launcher();
bool commit_allowed();
// Throws Error naming `what` when !commit_allowed().
void check_commit_allowed(const std::string& what);

}  // namespace distill
