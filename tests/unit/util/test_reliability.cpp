#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "distill/io/h5.h"
#include "distill/train/checkpoint.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/lock.h"
#include "distill/util/log.h"
#include "test_util.h"

using namespace distill;
namespace fs = std::filesystem;

namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A pid that is certainly dead: a child that has exited and been reaped.
long dead_pid() {
  const pid_t p = ::fork();
  if (p == 0) ::_exit(0);
  ::waitpid(p, nullptr, 0);
  return p;
}

void write_lock(const std::string& dir, const std::string& host, long pid) {
  fs::create_directories(dir);
  std::ofstream(fs::path(dir) / ".distill.lock")
      << "{\"host\":\"" << host << "\",\"pid\":" << pid << ",\"ppid\":" << ::getppid()
      << ",\"job\":\"distill train -c a.yaml\",\"started\":1}\n";
}

}  // namespace

TEST(DiskErrors, AppendOnAFullDeviceNamesTheCauseAndThePath) {
  const auto m = message_of([] { append_line("/dev/full", "{\"step\": 1}\n"); });
  EXPECT_NE(m.find("No space left on device"), std::string::npos) << m;
  EXPECT_NE(m.find("/dev/full"), std::string::npos) << m;
}

TEST(DiskErrors, AppendWritesWholeLines) {
  const auto path = test::temp_dir("append") + "/metrics.jsonl";
  append_line(path, "a\n");
  append_line(path, "b\n");
  EXPECT_EQ(read_file(path), "a\nb\n");
}

TEST(DiskErrors, AtomicWriteNamesTheCauseAndLeavesNoTemporary) {
  const auto dir = test::temp_dir("atomic");
  const auto m = message_of([&] { write_file_atomic(dir + "/missing/x.json", "{}"); });
  EXPECT_NE(m.find("No such file or directory"), std::string::npos) << m;
  EXPECT_NE(m.find(dir + "/missing/x.json"), std::string::npos) << m;
  write_file_atomic(dir + "/x.json", "{}");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.path().filename() != "x.json";
  EXPECT_EQ(entries, 0);
}

TEST(DiskErrors, Hdf5ErrorsCarryTheCause) {
  const auto dir = test::temp_dir("h5cause");
  const auto m = message_of([&] { h5::File::create(dir + "/missing/shard.h5"); });
  EXPECT_NE(m.find("No such file or directory"), std::string::npos) << m;
}

TEST(DirLock, SecondJobIsRefusedAndTheLockIsReleased) {
  const auto dir = test::temp_dir("lock");
  {
    DirLock a(dir, "distill train -c a.yaml");
    EXPECT_TRUE(fs::exists(a.path()));
    const auto m = message_of([&] { DirLock b(dir, "distill train -c b.yaml"); });
    EXPECT_NE(m.find("is held by pid " + std::to_string(::getpid())), std::string::npos) << m;
    EXPECT_NE(m.find("distill train -c a.yaml"), std::string::npos) << m;
  }
  EXPECT_FALSE(fs::exists(fs::path(dir) / ".distill.lock"));
  DirLock again(dir, "distill train -c c.yaml");
}

TEST(DirLock, LockOfADeadProcessOnThisHostIsTakenOver) {
  const auto dir = test::temp_dir("lock-stale");
  write_lock(dir, host_name(), dead_pid());
  DirLock l(dir, "distill train");
  EXPECT_NE(read_file(l.path()).find("\"pid\":" + std::to_string(::getpid())), std::string::npos);
}

TEST(DirLock, LockOfAnotherHostIsRefusedWithTheWayOut) {
  const auto dir = test::temp_dir("lock-host");
  write_lock(dir, "node-elsewhere", 12345);
  const auto m = message_of([&] { DirLock l(dir, "distill train"); });
  EXPECT_NE(m.find("pid 12345 on node-elsewhere"), std::string::npos) << m;
  EXPECT_NE(m.find("remove " + dir + "/.distill.lock"), std::string::npos) << m;
}

TEST(DirLock, StaleTemporariesAreRemoved) {
  const auto dir = test::temp_dir("stale");
  fs::create_directories(fs::path(dir) / "step-00000004.tmp-99");
  std::ofstream(fs::path(dir) / "step-00000004.tmp-99" / "model.safetensors") << "x";
  std::ofstream(fs::path(dir) / "latest.tmp-77") << "x";
  std::ofstream(fs::path(dir) / "latest") << "step-00000002\n";
  EXPECT_EQ(remove_stale_temporaries(dir), 2);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "latest"));
  EXPECT_FALSE(fs::exists(fs::path(dir) / "step-00000004.tmp-99"));
}

TEST(Checkpoint, SkippedStepsAreKept) {
  const auto root = test::temp_dir("ckpt-skip");
  Checkpoint c;
  c.state.step = 3;
  c.state.skipped_steps = 2;
  c.model.tensors["w"] = {"U8", {1}, std::string(1, 'a')};
  save_checkpoint(root, c, 0);
  EXPECT_EQ(load_latest_checkpoint(root)->state.skipped_steps, 2);
}

TEST(OrphanedRanks, CommitsStopOnceTheLauncherIsGone) {
  EXPECT_TRUE(commit_allowed());  // nothing recorded: not launched by mpirun
  const auto dir = test::temp_dir("orphan");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t mid = ::fork();
  if (mid == 0) {
    // A "launcher" whose child records it, outlives it, then tries to commit.
    const pid_t child = ::fork();
    if (child == 0) {
      record_launcher();
      ::close(fds[0]);
      // Wait until re-parented (the launcher exits below).
      for (int i = 0; i < 500 && commit_allowed(); ++i) ::usleep(10000);
      std::string verdict = "committed";
      try {
        write_file_atomic(dir + "/manifest.json", "{}");
      } catch (const Error& e) {
        verdict = e.what();
      }
      if (::write(fds[1], verdict.data(), verdict.size()) < 0) ::_exit(2);
      ::_exit(0);
    }
    ::usleep(100000);
    ::_exit(0);
  }
  ::close(fds[1]);
  ::waitpid(mid, nullptr, 0);
  std::string verdict;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) verdict.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  EXPECT_NE(verdict.find("launcher of this rank"), std::string::npos) << verdict;
  EXPECT_FALSE(fs::exists(dir + "/manifest.json"));
}
