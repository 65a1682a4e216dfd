// Shared helpers for the unit tests.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <unistd.h>

#include "distill/util/error.h"

namespace distill::test {

inline std::string fixture(const std::string& name) {
  const char* dir = std::getenv("DISTILL_FIXTURES");
  return std::string(dir ? dir : "tests/fixtures") + "/" + name;
}

// A fresh empty directory under the system temp dir.
inline std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("distill-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

// The message of the distill::Error that `f` throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace distill::test
