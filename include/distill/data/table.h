// Rows of a text table: CSV (RFC 4180 quoting, fields may span lines), TSV (tab-separated, no
// quoting) or JSON lines (one object per line). A UTF-8 byte-order mark is skipped. Each record
// knows the line it starts on, so every error can name file and line.
#pragma once
#include <functional>
#include <map>
#include <string>
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

// Calls `fn` for every record in order. Records that cannot be parsed (broken quoting, a wrong
// field count, a line that is not a JSON object, a field holding a NUL byte) arrive with `error` set; the reader then
// resynchronises at the next line. Throws DataError when the file cannot be read or has no header.
void read_table(const std::string& path, const TableOptions& o, const std::function<void(TableRow&)>& fn);

}  // namespace distill
