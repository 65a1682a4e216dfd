// `distill prepare` of a table: text tables on every rank (Note [parallel prepare]), feature
// tables on rank 0.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>

#include "distill/app/commands.h"
#include "distill/data/dataset.h"
#include "distill/data/mix.h"
#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/log.h"

namespace distill {

namespace fs = std::filesystem;

namespace {

// Throws, on every rank, the error of the lowest rank that has one.
void throw_first(Communicator& comm, const std::string& error) {
  for (const auto& e : comm.allgather_string(error))
    if (!e.empty()) throw DataError(e);
}

// This rank's share of the input: the records that start in its 1/W of the bytes (record_start,
// with the CSV quote parity of all bytes before), and the line its first record starts on. Also
// returns where the next share starts (the file's size for the last).
std::pair<TableRange, std::uint64_t> share_of(Communicator& comm, const PrepareOptions& o, TableFormat format) {
  std::string error;
  std::uint64_t size = 0;
  ByteCounts mine;
  try {
    DISTILL_CHECK(fs::exists(o.input), DataError, "cannot open ", o.input);
    size = fs::file_size(o.input);
    const int r = comm.rank(), w = comm.size();
    mine = count_bytes(o.input, size * r / w, size * (r + 1) / w);
  } catch (const std::exception& e) {
    error = e.what();
  }
  throw_first(comm, error);
  const auto counts = comm.allgather_string(str(mine.quotes, " ", mine.newlines));
  std::uint64_t quotes = 0, newlines = 0;
  for (int k = 0; k < comm.rank(); ++k) {
    std::uint64_t q = 0, n = 0;
    std::istringstream(counts[k]) >> q >> n;
    quotes += q;
    newlines += n;
  }
  const auto at = size * comm.rank() / comm.size();
  std::pair<std::uint64_t, std::uint64_t> found{at, 0};
  try {
    found = record_start(o.input, format, at, format == TableFormat::kCsv && quotes % 2 == 1);
  } catch (const std::exception& e) {
    error = e.what();
  }
  throw_first(comm, error);
  const auto [start, skipped] = found;
  const auto starts = comm.allgather_string(std::to_string(start));
  TableRange range;
  range.begin = start;
  range.first_line = static_cast<long>(newlines + skipped) + 1;
  const auto next = comm.rank() + 1 < comm.size() ? std::stoull(starts[comm.rank() + 1]) : size;
  if (comm.rank() + 1 < comm.size()) range.end = next;
  return {range, next};
}

// Every rank tokenizes its share into runs under `dir`; the parts in file order. When a rank's
// parser did not stop where the next share starts (quoting the parity misread), rank 0 prepares the
// whole file alone instead.
std::vector<PreparePart> prepare_shares(Communicator& comm, const PrepareOptions& o, const std::string& dir) {
  const auto format = o.format.empty() ? table_format_of(o.input) : parse_table_format(o.format);
  const auto [range, next] = share_of(comm, o, format);
  std::string error, json;
  try {
    auto part = prepare_part(o, range, dir, comm.rank());
    if (part.stop != next) error = str("stopped at byte ", part.stop, " instead of ", next);
    json = to_json(part);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const auto errors = comm.allgather_string(error);
  const auto jsons = comm.allgather_string(json);
  std::vector<PreparePart> parts;
  bool misread = false;
  for (int k = 0; k < comm.size(); ++k) {
    if (!errors[k].empty() && jsons[k].empty()) throw DataError(errors[k]);  // a bad row, in file order
    misread = misread || !errors[k].empty();
    parts.push_back(prepare_part_from_json(jsons[k]));
  }
  if (!misread) return parts;
  parts.clear();
  std::string fallback_error;
  if (comm.rank() == 0) {
    for (const auto& e : errors)
      if (!e.empty()) {
        spdlog::warn("{}: the shares of the file did not meet at record starts (a share {}); preparing it on one rank",
                     o.input, e);
        break;
      }
    try {
      parts.push_back(prepare_part(o, TableRange{}, dir, comm.size()));
    } catch (const std::exception& e) {
      fallback_error = e.what();
    }
  }
  throw_first(comm, fallback_error);
  return parts;
}

// "2 labels", or the regression target's name.
std::string label_summary(const PrepareOptions& o, const Dataset& d) {
  const auto what = d.regression ? str("regression target '", d.label_names.at(0), "'")
                                 : str(d.label_names.size(), " labels");
  return what + (o.unlabeled ? " (rows unlabeled)" : "");
}

void log_prepared(const PrepareOptions& o, const std::string& out, const PrepareReport& rep, const Dataset& d,
                  double seconds, int ranks) {
  if (o.mlm) {
    std::int64_t masked = 0;
    for (const auto& [name, sp] : d.splits)
      sp.scan([&](const DataSplit& b, std::int64_t) {
        for (auto y : b.mlm_labels) masked += y != kIgnoreLabel;
      });
    spdlog::info("masked LM: {} tokens masked at p = {} (seed {})", masked, o.mask_prob, o.seed);
  }
  for (const auto& m : rep.bad_examples) spdlog::warn("skipped {}", m);
  spdlog::info(
      "wrote {}: {} rows read, {} bad rows skipped, {} truncated to {} tokens; train {}, dev {}, test {}; "
      "{}; vocabulary {} ({} tokens, hash {}); content hash {}",
      out, rep.rows, rep.bad_rows, rep.truncated, o.max_length, rep.train, rep.dev, rep.test, label_summary(o, d),
      o.vocab, d.vocab_size, d.vocab_hash, d.content_hash);
  spdlog::info("prepared {} texts in {:.2f} s on {} rank(s): {:.0f} texts/s", rep.rows, seconds, ranks,
               static_cast<double>(rep.rows) / std::max(1e-9, seconds));
}

void prepare_features_file(const PrepareOptions& o, const std::string& out) {
  PrepareReport rep;
  auto d = prepare_features(o, &rep);
  if (!parent_dir(out).empty()) fs::create_directories(parent_dir(out));
  const auto hash = write_dataset(out, d);
  spdlog::info("wrote {}: {} rows of {} features{}, {}; train {}, dev {}, test {}; content hash {}", out, rep.rows,
               d.splits.at("train").dim, o.standardize ? " (standardized)" : "", label_summary(o, d), rep.train,
               rep.dev, rep.test, hash);
}

}  // namespace

void cmd_prepare_text(Communicator& comm, const PrepareOptions& o, const std::string& out) {
  std::string error, dir;
  if (o.features) {
    if (comm.rank() == 0) try {
        prepare_features_file(o, out);
      } catch (const Error& e) {
        error = e.what();
      }
    comm.broadcast_string(error, 0);
    if (!error.empty()) throw DataError(error);
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (comm.rank() == 0) try {
      if (!parent_dir(out).empty()) fs::create_directories(parent_dir(out));
      dir = out + ".parts-" + std::to_string(::getpid());
      fs::create_directories(dir);
    } catch (const std::exception& e) {
      error = e.what();
    }
  comm.broadcast_string(error, 0);
  if (!error.empty()) throw DataError(str("cannot create the parts directory beside ", out, ": ", error));
  comm.broadcast_string(dir, 0);
  try {
    const auto parts = prepare_shares(comm, o, dir);
    const auto t1 = std::chrono::steady_clock::now();
    if (comm.rank() == 0) try {
        PrepareReport rep;
        merge_parts(o, parts, out, &rep);
        const auto t2 = std::chrono::steady_clock::now();
        spdlog::info("tokenized in {:.2f} s on {} rank(s), merged in {:.2f} s",
                     std::chrono::duration<double>(t1 - t0).count(), comm.size(),
                     std::chrono::duration<double>(t2 - t1).count());
        log_prepared(o, out, rep, read_dataset(out, 0), std::chrono::duration<double>(t2 - t0).count(), comm.size());
      } catch (const Error& e) {
        error = e.what();
      }
    comm.broadcast_string(error, 0);
  } catch (...) {
    if (comm.rank() == 0) fs::remove_all(dir);
    throw;
  }
  if (comm.rank() == 0) fs::remove_all(dir);
  if (!error.empty()) throw DataError(error);
}

void run_on_rank0(Communicator& comm, const std::function<void()>& work) {
  std::string error;
  std::exception_ptr failure;
  if (comm.rank() == 0) {
    try {
      work();
    } catch (const std::exception& e) {
      error = e.what();
      failure = std::current_exception();
    }
  }
  comm.broadcast_string(error, 0);
  if (failure) std::rethrow_exception(failure);
  if (!error.empty()) throw DataError(error);
}

void cmd_mix(Communicator& comm, const MixOptions& o, const std::string& out) {
  run_on_rank0(comm, [&] {
    if (!parent_dir(out).empty()) fs::create_directories(parent_dir(out));
    const auto rep = write_mix(o, out);
    for (std::size_t k = 0; k < o.sources.size(); ++k)
      spdlog::info("mix: {}:{} x {} -> {} rows", o.sources[k].path, o.sources[k].split, o.sources[k].weight,
                   rep.rows[k]);
    spdlog::info("wrote {}: train {} rows ({} labeled), dev {}, test {}; content hash {}", out, rep.train, rep.labeled,
                 rep.dev, rep.test, rep.content_hash);
  });
}

}  // namespace distill
