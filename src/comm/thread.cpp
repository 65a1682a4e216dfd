#include "distill/comm/thread.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "distill/comm/thread_calls.h"
#include "distill/util/error.h"

namespace distill {

using namespace thread_calls;

namespace {

struct Group;

// State shared by every group of one run_thread_ranks call: one lock, and the failure that ends
// every collective of every group.
struct Fabric {
  std::mutex mu;
  std::condition_variable cv;
  std::string failure;         // set once; then every collective throws it
  std::vector<bool> returned;  // per thread: its body has ended
  std::chrono::duration<double> timeout{0};
  // Caller holds mu.
  void fail(const std::string& why) {
    if (failure.empty()) failure = why;
    cv.notify_all();
  }
};

// One collective of a group, from the first rank's arrival to the last rank's departure.
struct Slot {
  std::vector<Call> calls;  // per group rank
  std::vector<bool> arrived;
  int arrivals = 0, departures = 0;
  bool done = false;
  std::vector<std::shared_ptr<Group>> groups;  // split: each rank's new group
  std::vector<int> ranks;                      // split: each rank's rank there
};

struct Group {
  std::shared_ptr<Fabric> fabric;
  std::vector<int> threads;             // group rank -> thread
  std::map<std::uint64_t, Slot> slots;  // collectives in flight, by sequence number
};

// Groups of a split: by color, ordered by (key, old rank) as MPI_Comm_split orders them.
void split_all(const Group& g, Slot& s) {
  std::map<int, std::vector<std::pair<int, int>>> by_color;  // color -> (key, rank)
  for (std::size_t r = 0; r < s.calls.size(); ++r)
    by_color[s.calls[r].root].emplace_back(s.calls[r].key, static_cast<int>(r));
  s.groups.resize(s.calls.size());
  s.ranks.resize(s.calls.size());
  for (auto& [color, members] : by_color) {
    std::sort(members.begin(), members.end());
    auto sub = std::make_shared<Group>();
    sub->fabric = g.fabric;
    for (std::size_t i = 0; i < members.size(); ++i) {
      const int r = members[i].second;
      sub->threads.push_back(g.threads[r]);
      s.groups[r] = sub;
      s.ranks[r] = static_cast<int>(i);
    }
  }
}

void complete(const Group& g, Slot& s) {
  const Call& c = s.calls[0];
  switch (c.kind) {
    case Kind::kAllreduce:
      reduce_all(s.calls);
      break;
    case Kind::kBroadcast:
      for (std::size_t r = 0; r < s.calls.size(); ++r)
        if (static_cast<int>(r) != c.root && c.count > 0)
          std::memcpy(s.calls[r].data, s.calls[c.root].data, c.count * dtype_size(c.t));
      break;
    case Kind::kAllgather:
      gather_all(s.calls);
      break;
    case Kind::kBarrier:
      break;
    case Kind::kSplit:
      split_all(g, s);
      break;
  }
  s.done = true;
}

// One rank of a group: joins, waits for and leaves its collectives. post, finish and try_finish
// take the fabric's lock; the other methods expect it held.
struct Member {
  std::shared_ptr<Group> g;
  int rank = 0;

  int size() const { return static_cast<int>(g->threads.size()); }
  Fabric& fabric() const { return *g->fabric; }

  // Joins collective `seq` with `c`; the last rank to join completes it.
  void post(std::uint64_t seq, const Call& c) const {
    std::lock_guard<std::mutex> l(fabric().mu);
    if (!fabric().failure.empty()) throw CommError(fabric().failure);
    Slot& s = g->slots[seq];
    if (s.arrivals == 0) {
      s.calls.resize(size());
      s.arrived.assign(size(), false);
    } else {
      const int first = static_cast<int>(std::find(s.arrived.begin(), s.arrived.end(), true) - s.arrived.begin());
      if (!same_call(s.calls[first], c)) {
        fabric().fail(str("collective #", seq, " of a group of ", size(), " thread ranks: rank ", first, " called ",
                          describe(s.calls[first]), ", rank ", rank, " called ", describe(c)));
        throw CommError(fabric().failure);
      }
    }
    s.calls[rank] = c;
    s.arrived[rank] = true;
    if (++s.arrivals == size()) {
      complete(*g, s);
      fabric().cv.notify_all();
    }
  }

  // A rank that this collective still waits for although its thread has ended; -1 if none.
  int returned_missing(const Slot& s) const {
    for (int r = 0; r < size(); ++r)
      if (!s.arrived[r] && fabric().returned[g->threads[r]]) return r;
    return -1;
  }

  std::string missing(const Slot& s) const {
    std::string out;
    for (int r = 0; r < size(); ++r)
      if (!s.arrived[r]) out += (out.empty() ? "" : ", ") + std::to_string(r);
    return out;
  }

  // Blocks until collective `seq` has completed. Throws CommError once the fabric has failed; fails
  // it when a rank it waits for has ended or the timeout passes (Note [thread ranks]).
  void wait(std::unique_lock<std::mutex>& l, std::uint64_t seq) const {
    Fabric& f = fabric();
    const Slot& s = g->slots.at(seq);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(f.timeout);
    auto what = [&] { return str(describe(s.calls[rank]), " on rank ", rank, " of a group of ", size()); };
    while (!s.done) {
      if (!f.failure.empty()) throw CommError(f.failure);
      const int gone = returned_missing(s);
      if (gone >= 0)
        f.fail(str(what(), ": rank ", gone, " returned without joining it"));
      else if (f.cv.wait_until(l, deadline) == std::cv_status::timeout && !s.done)
        f.fail(str(what(), " did not complete within ", f.timeout.count(), " s: rank(s) ", missing(s),
                   " have not joined it"));
    }
  }

  // Leaves completed collective `seq`; the last rank to leave drops it. Caller holds the lock.
  void depart(std::uint64_t seq) const {
    auto it = g->slots.find(seq);
    if (++it->second.departures == size()) g->slots.erase(it);
  }

  void finish(std::uint64_t seq) const {
    std::unique_lock<std::mutex> l(fabric().mu);
    wait(l, seq);
    depart(seq);
  }

  // finish() if the collective has completed; false if not yet.
  bool try_finish(std::uint64_t seq) const {
    std::lock_guard<std::mutex> l(fabric().mu);
    if (!g->slots.at(seq).done) {
      if (!fabric().failure.empty()) throw CommError(fabric().failure);
      return false;
    }
    depart(seq);
    return true;
  }
};

// A non-blocking allreduce: it completes when the last rank joins it.
class ThreadPending final : public PendingReduce {
 public:
  ThreadPending(Member m, std::uint64_t seq) : m_(std::move(m)), seq_(seq) {}
  // Waits as wait() does (no rank may still read the buffer afterwards), without throwing.
  ~ThreadPending() override {
    if (done_) return;
    try {
      m_.finish(seq_);
    } catch (const CommError&) {
      // the group has failed: no rank completes this collective any more
    }
  }
  void wait() override {
    if (done_) return;
    m_.finish(seq_);
    done_ = true;
  }
  bool test() override {
    if (!done_) done_ = m_.try_finish(seq_);
    return done_;
  }

 private:
  Member m_;
  std::uint64_t seq_;
  bool done_ = false;
};

void check_average(DType t, ReduceOp op) {
  DISTILL_CHECK(op != ReduceOp::kAverage || t == DType::kFloat32 || t == DType::kFloat64, CommError,
                "allreduce average needs a floating dtype");
}

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<Group> g, int rank) : m_{std::move(g), rank} {}
  int rank() const override { return m_.rank; }
  int size() const override { return m_.size(); }
  int local_size() const override { return m_.size(); }  // one process: one node
  int local_rank() const override { return m_.rank; }

  void allreduce(void* data, std::size_t count, DType t, ReduceOp op) override {
    check_average(t, op);
    Call c{Kind::kAllreduce, count, t, op};
    c.data = data;
    m_.finish(post(c));
  }
  std::unique_ptr<PendingReduce> iallreduce(void* data, std::size_t count, DType t, ReduceOp op) override {
    check_average(t, op);
    Call c{Kind::kAllreduce, count, t, op};
    c.data = data;
    return std::make_unique<ThreadPending>(m_, post(c));
  }
  void broadcast(void* data, std::size_t count, DType t, int root) override {
    DISTILL_CHECK(root >= 0 && root < size(), CommError, "broadcast root ", root, " out of range for ", size(),
                  " ranks");
    Call c{Kind::kBroadcast, count, t, ReduceOp::kSum, root};
    c.data = data;
    m_.finish(post(c));
  }
  void allgather(const void* in, void* out, std::size_t count, DType t) override {
    Call c{Kind::kAllgather, count, t};
    c.in = in;
    c.data = out;
    m_.finish(post(c));
  }
  void barrier() override { m_.finish(post(Call{})); }
  std::unique_ptr<Communicator> split(int color, int key) override {
    const auto seq = post(Call{Kind::kSplit, 0, DType::kUInt8, ReduceOp::kSum, color, key});
    std::unique_lock<std::mutex> l(m_.fabric().mu);
    m_.wait(l, seq);
    const Slot& s = m_.g->slots.at(seq);
    auto out = std::make_unique<ThreadCommunicator>(s.groups[m_.rank], s.ranks[m_.rank]);
    m_.depart(seq);
    return out;
  }

 private:
  std::uint64_t post(const Call& c) {
    m_.post(next_, c);
    return next_++;
  }
  Member m_;
  std::uint64_t next_ = 0;  // this rank's collectives so far: the k-th matches every rank's k-th
};

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

}  // namespace

void run_thread_ranks(int n, const std::function<void(Communicator&)>& body, ThreadRankOptions o) {
  DISTILL_CHECK(n >= 1, ConfigError, "thread ranks: need at least 1 rank, got ", n);
  DISTILL_CHECK(o.timeout_s > 0, ConfigError, "thread ranks: the collective timeout must be positive, got ",
                o.timeout_s);
  auto fabric = std::make_shared<Fabric>();
  fabric->returned.assign(static_cast<std::size_t>(n), false);
  fabric->timeout = std::chrono::duration<double>(o.timeout_s);
  auto world = std::make_shared<Group>();
  world->fabric = fabric;
  for (int r = 0; r < n; ++r) world->threads.push_back(r);
  std::exception_ptr first;
  // Records the first failure and ends every collective (Note [thread ranks]).
  auto failed = [&](int r, std::exception_ptr e) {
    std::lock_guard<std::mutex> l(fabric->mu);
    if (!first) first = e;
    fabric->fail(str("rank ", r, " of ", n, " thread ranks failed: ", message_of(e)));
  };
  auto run = [&](int r) {
    try {
      ThreadCommunicator comm(world, r);
      body(comm);
    } catch (...) {
      failed(r, std::current_exception());
    }
    std::lock_guard<std::mutex> l(fabric->mu);
    fabric->returned[r] = true;
    fabric->cv.notify_all();
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    try {
      threads.emplace_back(run, r);
    } catch (...) {  // no thread for rank r: it and the ranks after it count as failed and ended
      failed(r, std::current_exception());
      std::lock_guard<std::mutex> l(fabric->mu);
      for (int q = r; q < n; ++q) fabric->returned[q] = true;
      break;
    }
  }
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace distill
