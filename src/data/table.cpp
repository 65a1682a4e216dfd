#include "distill/data/table.h"

#include <algorithm>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "distill/util/error.h"
#include "distill/util/text.h"

namespace distill {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Reads lines, counting them and the bytes consumed, with the trailing '\r' of CRLF endings removed.
class LineReader {
 public:
  explicit LineReader(std::istream& in) : in_(in) {}
  bool next(std::string& line) {
    if (!std::getline(in_, line)) return false;
    pos_ += line.size() + (in_.eof() ? 0 : 1);
    ++line_;
    if (line_ == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  }
  long line() const { return line_; }
  std::uint64_t pos() const { return pos_; }  // bytes of the file before the next line
  // Continues at byte `pos`, the start of line `line` + 1.
  void seek(std::uint64_t pos, long line) {
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(pos));
    pos_ = pos;
    line_ = line;
  }

 private:
  std::istream& in_;
  long line_ = 0;
  std::uint64_t pos_ = 0;
};

// One CSV record starting at `first`; pulls more lines for quoted fields that span lines.
// Returns false with `error` set on broken quoting.
bool parse_csv_record(std::string first, LineReader& lines, std::vector<std::string>& out, std::string& error) {
  out.clear();
  std::string field, line = std::move(first);
  std::size_t i = 0;
  bool quoted = false, was_quoted = false;
  for (;;) {
    if (i >= line.size()) {
      if (!quoted) {
        out.push_back(field);
        return true;
      }
      std::string more;
      if (!lines.next(more)) {
        error = "quoted field is not closed before the end of the file";
        return false;
      }
      field += '\n';
      line = std::move(more);
      i = 0;
      continue;
    }
    const char c = line[i++];
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (i < line.size() && line[i] == '"') {
        field += '"';
        ++i;
      } else {
        quoted = false;
        if (i < line.size() && line[i] != ',') {
          error = str("unexpected character '", line[i], "' after the closing quote of field ", out.size() + 1);
          return false;
        }
      }
    } else if (c == ',') {
      out.push_back(field);
      field.clear();
      was_quoted = false;
    } else if (c == '"') {
      if (!field.empty() || was_quoted) {
        error = str("stray quote inside unquoted field ", out.size() + 1);
        return false;
      }
      quoted = was_quoted = true;
    } else {
      field += c;
    }
  }
}

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();  // floats and nested values keep their JSON text
}

}  // namespace

TableFormat parse_table_format(const std::string& name) {
  if (name == "csv") return TableFormat::kCsv;
  if (name == "tsv") return TableFormat::kTsv;
  if (name == "jsonl") return TableFormat::kJsonl;
  throw ConfigError(str("unknown table format '", name, "': expected csv, tsv or jsonl"));
}

TableFormat table_format_of(const std::string& path) {
  for (const char* e : {".csv"})
    if (ends_with(path, e)) return TableFormat::kCsv;
  for (const char* e : {".tsv", ".tab", ".txt"})
    if (ends_with(path, e)) return TableFormat::kTsv;
  for (const char* e : {".jsonl", ".ndjson", ".json"})
    if (ends_with(path, e)) return TableFormat::kJsonl;
  throw ConfigError(str("cannot tell the format of ", path, " from its extension: give --format csv, tsv or jsonl"));
}

namespace {

void parse_json_record(const std::string& line, TableRow& row) {
  try {
    auto j = nlohmann::json::parse(line);
    if (!j.is_object()) {
      row.error = "expected a JSON object, found " + std::string(j.type_name());
    } else {
      for (auto it = j.begin(); it != j.end(); ++it) row.fields[it.key()] = scalar_text(it.value());
    }
  } catch (const nlohmann::json::exception& e) {
    row.error = str("not valid JSON: ", e.what());
  }
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Text never holds NUL bytes; one in a field means a binary or mis-encoded (UTF-16?) file.
void check_nul(TableRow& row) {
  if (!row.error.empty()) return;
  for (const auto& [col, value] : row.fields)
    if (value.find('\0') != std::string::npos) {
      row.error = str("column '", col, "' holds a NUL byte (binary or UTF-16 text?)");
      return;
    }
}

}  // namespace

void read_table(const std::string& path, const TableOptions& o, const std::function<void(TableRow&)>& fn) {
  read_table(path, o, TableRange{}, fn);
}

std::uint64_t read_table(const std::string& path, const TableOptions& o, const TableRange& range,
                         const std::function<void(TableRow&)>& fn) {
  std::ifstream in(path, std::ios::binary);
  DISTILL_CHECK(in, DataError, "cannot open ", path);
  LineReader lines(in);
  std::string line;
  long index = range.first_index;
  const bool jsonl = o.format == TableFormat::kJsonl, csv = o.format == TableFormat::kCsv;
  std::vector<std::string> header = o.column_names, cells;
  std::string error;
  if (!jsonl && header.empty()) {
    DISTILL_CHECK(lines.next(line), DataError, path, " is empty: expected a header row");
    if (csv) {
      DISTILL_CHECK(parse_csv_record(line, lines, header, error), DataError, path, ":1: header row: ", error);
    } else {
      header = split(line, '\t');
    }
  }
  for (const auto& [col, role] : o.required_columns)
    DISTILL_CHECK(jsonl || std::find(header.begin(), header.end(), col) != header.end(), DataError, path,
                  o.column_names.empty() ? ": the header has no " : ": --column-names has no ", role, " column '", col,
                  "' (columns: ", join_names(header), ")");
  if (range.begin > lines.pos()) {  // a later part of the file: start at its first record
    lines.seek(range.begin, range.first_line - 1);
  }
  while (lines.pos() < range.end && lines.next(line)) {
    if (jsonl ? line.find_first_not_of(" \t") == std::string::npos : line.empty()) continue;
    TableRow row;
    row.line = lines.line();
    row.index = index++;
    if (jsonl) {
      parse_json_record(line, row);
      check_nul(row);
      fn(row);
      continue;
    }
    if (csv) {
      if (!parse_csv_record(line, lines, cells, error)) row.error = error;
    } else {
      cells = split(line, '\t');
    }
    if (row.error.empty() && cells.size() != header.size())
      row.error = str("has ", cells.size(), " fields, expected ", header.size(), " (",
                      header.size() == 1 ? "column " : "columns ", join_names(header), ")");
    if (row.error.empty())
      for (std::size_t k = 0; k < header.size(); ++k) row.fields[header[k]] = std::move(cells[k]);
    check_nul(row);
    fn(row);
  }
  return lines.pos();
}

ByteCounts count_bytes(const std::string& path, std::uint64_t begin, std::uint64_t end) {
  std::ifstream in(path, std::ios::binary);
  DISTILL_CHECK(in, DataError, "cannot open ", path);
  in.seekg(static_cast<std::streamoff>(begin));
  ByteCounts c;
  std::vector<char> buf(std::size_t{1} << 20);
  for (std::uint64_t left = end - begin; left > 0 && in;) {
    in.read(buf.data(), static_cast<std::streamsize>(std::min<std::uint64_t>(left, buf.size())));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got == 0) break;
    for (std::size_t i = 0; i < got; ++i) {
      c.quotes += buf[i] == '"';
      c.newlines += buf[i] == '\n';
    }
    left -= got;
  }
  return c;
}

std::pair<std::uint64_t, std::uint64_t> record_start(const std::string& path, TableFormat format, std::uint64_t at,
                                                     bool in_quotes) {
  if (at == 0) return {0, 0};
  std::ifstream in(path, std::ios::binary);
  DISTILL_CHECK(in, DataError, "cannot open ", path);
  in.seekg(static_cast<std::streamoff>(at - 1));  // a newline just before `at` makes `at` a start
  const bool csv = format == TableFormat::kCsv;
  std::uint64_t pos = at - 1, newlines = 0;
  bool quoted = in_quotes;  // the byte before `at` is not a quote when it matters (a newline)
  for (char c; in.get(c); ++pos) {
    if (pos >= at && c == '\n') ++newlines;
    if (c == '"' && csv && pos >= at) quoted = !quoted;
    if (c == '\n' && !quoted) return {pos + 1, newlines};
  }
  return {pos, newlines};  // no further record: the end of the file
}

}  // namespace distill
