// Declared options. An options struct lists each of its config fields once, in
// `static const OptionTable<S>& options()`: the key, the member it binds, a help line and the
// checks that concern that field alone. The default is the member's in-class initializer, read
// from a default-built S, so parsing, printing, the help table and per-field validation all follow
// from that one list. Enum fields name their choices there and take their spelling from the
// enum's `name(E)` (found by argument-dependent lookup).
#pragma once
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "distill/util/error.h"

namespace distill {

// Thrown by Option::parse; what() completes "key = 'value'": " is not an integer",
// " is not a finite number", ", expected adamw or sgd".
class BadValue : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace options_detail {
// Text to value, as config files and --set spell it; each throws BadValue.
void parse(const std::string& text, std::string& v);
void parse(const std::string& text, long& v);
void parse(const std::string& text, double& v);  // finite numbers only
void parse(const std::string& text, bool& v);    // true, false, 1, 0
// Value to text, the inverse of parse (doubles with 17 significant digits, so they read back exactly).
std::string print(const std::string& v);
std::string print(long v);
std::string print(double v);
std::string print(bool v);
// What the help table says of each type.
const char* type_name(const std::string*);
const char* type_name(const long*);
const char* type_name(const double*);
const char* type_name(const bool*);
// "a", "a or b", "a, b or c".
std::string join_or(const std::vector<std::string>& words);
// `message` with every "{key}" and "{value}" replaced.
std::string fill(const std::string& message, const std::string& key, const std::string& value);
// `v` as error messages print it: str(v), or the enum's name.
template <class T>
std::string describe(const T& v) {
  if constexpr (std::is_enum_v<T>)
    return name(v);
  else
    return str(v);
}
}  // namespace options_detail

// One config field of S.
template <class S>
struct Option {
  std::string key;      // "lr"; "train.lr" once mounted into a table without a section
  std::string type;     // "integer", "number", "true or false", "string", or the choices ("adamw or sgd")
  std::string help;     // one line for the help table
  bool number = false;  // a double: the help table shows its default in the shortest spelling
  std::function<void(S&, const std::string&)> parse;                          // throws BadValue
  std::function<std::string(const S&)> print;                                 // as config files spell it
  std::vector<std::function<void(const S&, const std::string& key)>> checks;  // throw ConfigError
};

template <class S>
class OptionTable {
 public:
  // `section` prefixes the keys in messages of check() and set(), and where the table is mounted.
  explicit OptionTable(std::string section = "") : section_(std::move(section)) {}

  // Adds checks to the field just declared.
  template <class T>
  class Ref {
   public:
    Ref(OptionTable* t, std::size_t i, T S::*m) : t_(t), i_(i), m_(m) {}
    // `ok(value)` false throws ConfigError(message) with "{key}" (the full key) and "{value}" filled in.
    Ref& check(std::function<bool(const T&)> ok, std::string message) {
      const auto m = m_;
      t_->fields_[i_].checks.push_back([m, ok, message](const S& s, const std::string& key) {
        if (!ok(s.*m)) throw ConfigError(options_detail::fill(message, key, options_detail::describe(s.*m)));
      });
      return *this;
    }

   private:
    OptionTable* t_;
    std::size_t i_;
    T S::*m_;
  };

  // A string, integer (long), number (double) or boolean field bound to `member`.
  template <class T>
  Ref<T> add(std::string key, T S::*member, std::string help) {
    static_assert(!std::is_enum_v<T>, "enum fields name their choices");
    Option<S> o;
    o.key = std::move(key);
    o.type = options_detail::type_name(static_cast<const T*>(nullptr));
    o.help = std::move(help);
    o.number = std::is_floating_point_v<T>;
    o.parse = [member](S& s, const std::string& text) { options_detail::parse(text, s.*member); };
    o.print = [member](const S& s) { return options_detail::print(s.*member); };
    return push(std::move(o), member);
  }

  // An enum field: a config may name the `choices` (spelled by name(E)); `hint` follows the list
  // in the error for any other value.
  template <class E>
  Ref<E> add(std::string key, E S::*member, std::initializer_list<E> choices, std::string help,
             const std::string& hint = "") {
    static_assert(std::is_enum_v<E>, "choices are for enum fields");
    const std::vector<E> allowed(choices);
    std::vector<std::string> words;
    for (E c : allowed) words.emplace_back(name(c));
    const std::string expected =
        ", expected " + options_detail::join_or(words) + (hint.empty() ? "" : " (" + hint + ")");
    Option<S> o;
    o.key = std::move(key);
    o.type = options_detail::join_or(words);
    o.help = std::move(help);
    o.parse = [member, allowed, expected](S& s, const std::string& text) {
      for (E c : allowed)
        if (text == name(c)) {
          s.*member = c;
          return;
        }
      throw BadValue(expected);
    };
    o.print = [member](const S& s) { return std::string(name(s.*member)); };
    // Values set in code rather than parsed are held to the same choices.
    o.checks.push_back([member, allowed, expected](const S& s, const std::string& k) {
      for (E c : allowed)
        if (s.*member == c) return;
      throw ConfigError(str(k, " = '", name(s.*member), "'", expected));
    });
    return push(std::move(o), member);
  }

  // Adds the fields of `sub`, bound to `member`, under the keys "<sub's section>.<key>": right
  // after the field `after` when given, else at the end.
  template <class M>
  void mount(M S::*member, const OptionTable<M>& sub, const std::string& after = "") {
    auto at = fields_.end();
    if (!after.empty()) {
      at = fields_.begin();
      while (at != fields_.end() && at->key != after) ++at;
      if (at == fields_.end()) throw std::logic_error("mount: no field " + after);
      ++at;
    }
    std::vector<Option<S>> added;
    for (const auto& f : sub.fields()) added.push_back(lift(member, f, sub.full_key(f.key)));
    fields_.insert(at, added.begin(), added.end());
  }

  const std::string& section() const { return section_; }
  const std::vector<Option<S>>& fields() const { return fields_; }
  // "section.key", or `key` in a table without a section.
  std::string full_key(const std::string& key, const std::string& section) const {
    return section.empty() ? key : section + "." + key;
  }
  std::string full_key(const std::string& key) const { return full_key(key, section_); }
  // The field named `key` (as in fields()), or null.
  const Option<S>* find(const std::string& key) const {
    for (const auto& f : fields_)
      if (f.key == key) return &f;
    return nullptr;
  }

  // Parses `value` into the field `key`; ConfigError "<section>.key = 'value' is not ..." for a bad
  // value, or naming an unknown key.
  void set(S& s, const std::string& key, const std::string& value, const std::string& section) const {
    const auto* f = find(key);
    if (!f) throw ConfigError(str("unknown option '", full_key(key, section), "'"));
    try {
      f->parse(s, value);
    } catch (const BadValue& e) {
      throw ConfigError(str(full_key(key, section), " = '", value, "'", e.what()));
    }
  }
  void set(S& s, const std::string& key, const std::string& value) const { set(s, key, value, section_); }

  // Runs the per-field checks in declaration order; the first failure throws ConfigError naming
  // the key under `section`.
  void check(const S& s, const std::string& section) const {
    for (const auto& f : fields_)
      for (const auto& c : f.checks) c(s, full_key(f.key, section));
  }
  void check(const S& s) const { check(s, section_); }

 private:
  template <class T>
  Ref<T> push(Option<S> o, T S::*member) {
    fields_.push_back(std::move(o));
    return Ref<T>(this, fields_.size() - 1, member);
  }

  template <class M>
  static Option<S> lift(M S::*member, const Option<M>& f, std::string key) {
    Option<S> o;
    o.key = std::move(key);
    o.type = f.type;
    o.help = f.help;
    o.number = f.number;
    const auto parse = f.parse;
    const auto print = f.print;
    o.parse = [member, parse](S& s, const std::string& text) { parse(s.*member, text); };
    o.print = [member, print](const S& s) { return print(s.*member); };
    for (const auto& c : f.checks)
      o.checks.push_back([member, c](const S& s, const std::string& k) { c(s.*member, k); });
    return o;
  }

  std::string section_;
  std::vector<Option<S>> fields_;
};

// The shortest spelling of `v` that reads back as `v` ("0.0005", not "0.00050000000000000001").
std::string shortest(double v);

}  // namespace distill
