// Small string helpers shared by the parsers.
#pragma once
#include <string>
#include <vector>

namespace distill {

// Splits at every `sep`; "a,,b" gives {"a", "", "b"} and "" gives {""}.
std::vector<std::string> split(const std::string& s, char sep);
// The items of a `sep`-separated list with blanks around them dropped, and empty items left out:
// " a, b,," gives {"a", "b"}.
std::vector<std::string> split_list(const std::string& s, char sep = ',');

}  // namespace distill
