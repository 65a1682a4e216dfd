// Rows of a text table: CSV (RFC 4180 quoting, fields may span lines), TSV (tab-separated, no
// quoting) or JSON lines (one object per line). A UTF-8 byte-order mark is skipped. Each record
// knows the line it starts on, so every error can name file and line.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace distill {

enum class TableFormat { kCsv, kTsv, kJsonl };

// From the extension (.csv, .tsv/.tab/.txt, .jsonl/.ndjson/.json); throws ConfigError otherwise.
TableFormat table_format_of(const std::string& path);
// Parses "csv", "tsv" or "jsonl".
TableFormat parse_table_format(const std::string& name);

struct TableRow {
  long line = 0;                              // 1-based line where the record starts
  long index = 0;                             // 0-based record number (header excluded)
  std::map<std::string, std::string> fields;  // column -> value (JSON scalars as text)
  std::string error;                          // non-empty: the record could not be parsed
};

struct TableOptions {
  TableFormat format = TableFormat::kCsv;
  // Names of the columns of a file without a header row (CSV/TSV); empty: the first row is the header.
  std::vector<std::string> column_names;
  // Columns the caller needs, as column -> role ("text", "label", ...): a CSV/TSV header without
  // one of them is an error naming the column and listing the header's columns.
  std::map<std::string, std::string> required_columns;
};

// A byte range of the file (Note [parallel prepare]): the records that start in [begin, end),
// `begin` being a record start on line `first_line`. Record indices count from `first_index`.
struct TableRange {
  std::uint64_t begin = 0, end = UINT64_MAX;
  long first_line = 1, first_index = 0;
};

// Calls `fn` for every record of `range` in order; returns the byte offset where it stopped (the
// start of the first record at or after range.end, or the file's size). The header row (unless
// column_names) is read from the start of the file whatever the range.
std::uint64_t read_table(const std::string& path, const TableOptions& o, const TableRange& range,
                         const std::function<void(TableRow&)>& fn);

// Quotes and newlines in bytes [begin, end) of a file.
struct ByteCounts {
  std::uint64_t quotes = 0, newlines = 0;
};
ByteCounts count_bytes(const std::string& path, std::uint64_t begin, std::uint64_t end);

// The first record start at or after `at` (0, or a byte after a newline outside quotes), given
// whether byte `at` lies inside a quoted CSV field (quotes are ignored for TSV and JSON lines);
// returns it with the newlines in [at, start).
std::pair<std::uint64_t, std::uint64_t> record_start(const std::string& path, TableFormat format, std::uint64_t at,
                                                     bool in_quotes);

// Calls `fn` for every record in order. Records that cannot be parsed (broken quoting, a wrong
// field count, a line that is not a JSON object, a field holding a NUL byte) arrive with `error` set; the reader then
// resynchronises at the next line. Throws DataError when the file cannot be read or has no header.
void read_table(const std::string& path, const TableOptions& o, const std::function<void(TableRow&)>& fn);

}  // namespace distill
