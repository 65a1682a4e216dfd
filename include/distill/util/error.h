// Error types and check macros. Every failure the user can cause surfaces as one of these, with a
// message that names the file, key or value involved and what was expected.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace distill {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class ConfigError : public Error {
 public:
  using Error::Error;
};
class DataError : public Error {
 public:
  using Error::Error;
};
class StoreError : public Error {
 public:
  using Error::Error;
};
class CommError : public Error {
 public:
  using Error::Error;
};

namespace detail {
inline void cat(std::ostringstream&) {}
template <typename T, typename... R>
void cat(std::ostringstream& os, const T& v, const R&... r) {
  os << v;
  cat(os, r...);
}
}  // namespace detail

// Concatenates its arguments with operator<<.
template <typename... A>
std::string str(const A&... a) {
  std::ostringstream os;
  detail::cat(os, a...);
  return os.str();
}

}  // namespace distill

// DISTILL_CHECK(cond, ErrorType, message parts...): throws ErrorType(message) when cond is false.
#define DISTILL_CHECK(cond, Type, ...)                    \
  do {                                                    \
    if (!(cond)) throw Type(::distill::str(__VA_ARGS__)); \
  } while (0)

// DISTILL_CHECK_EQ(a, b, Type, context...): throws with both operands printed.
#define DISTILL_CHECK_EQ(a, b, Type, ...)                                                                \
  do {                                                                                                   \
    const auto& va_ = (a);                                                                               \
    const auto& vb_ = (b);                                                                               \
    if (!(va_ == vb_))                                                                                   \
      throw Type(::distill::str(__VA_ARGS__, " (", #a, " = ", va_, ", expected ", #b, " = ", vb_, ")")); \
  } while (0)
