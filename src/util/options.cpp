#include "distill/util/options.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace distill {

namespace options_detail {

void parse(const std::string& text, std::string& v) { v = text; }

void parse(const std::string& text, long& v) {
  std::size_t pos = 0;
  long x = 0;
  try {
    x = std::stol(text, &pos);
  } catch (const std::exception&) {
    pos = std::string::npos;
  }
  if (pos != text.size()) throw BadValue(" is not an integer");
  v = x;
}

void parse(const std::string& text, double& v) {
  std::size_t pos = 0;
  double x = 0;
  try {
    x = std::stod(text, &pos);
  } catch (const std::exception&) {
    pos = std::string::npos;
  }
  if (pos != text.size()) throw BadValue(" is not a number");
  if (!std::isfinite(x)) throw BadValue(" is not a finite number");
  v = x;
}

void parse(const std::string& text, bool& v) {
  if (text == "true" || text == "1")
    v = true;
  else if (text == "false" || text == "0")
    v = false;
  else
    throw BadValue(" is not true or false");
}

std::string print(const std::string& v) { return v; }
std::string print(long v) { return std::to_string(v); }
std::string print(bool v) { return v ? "true" : "false"; }
std::string print(double v) {
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}

const char* type_name(const std::string*) { return "string"; }
const char* type_name(const long*) { return "integer"; }
const char* type_name(const double*) { return "number"; }
const char* type_name(const bool*) { return "true or false"; }

std::string join_or(const std::vector<std::string>& words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += words[i];
  }
  return out;
}

std::string fill(const std::string& message, const std::string& key, const std::string& value) {
  std::string out;
  for (std::size_t i = 0; i < message.size();) {
    if (message.compare(i, 5, "{key}") == 0) {
      out += key;
      i += 5;
    } else if (message.compare(i, 7, "{value}") == 0) {
      out += value;
      i += 7;
    } else {
      out += message[i++];
    }
  }
  return out;
}

}  // namespace options_detail

std::string shortest(double v) {
  // At least the integer digits, so that 600 prints as "600" rather than "6e+02".
  const int whole = std::fabs(v) >= 1 ? static_cast<int>(std::floor(std::log10(std::fabs(v)))) + 1 : 1;
  for (int digits = 1; digits < 17; ++digits) {
    std::ostringstream os;
    os << std::setprecision(std::max(digits, std::min(whole, 17))) << v;
    if (std::stod(os.str()) == v) return os.str();
  }
  return options_detail::print(v);
}

}  // namespace distill
