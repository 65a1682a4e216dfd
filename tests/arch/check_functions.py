#!/usr/bin/env python3
"""Measures the length of every function defined in src/ (signature to closing brace, lambdas
inside counted with their function). Prints the longest and exits 1 when one exceeds the limit
(default 80 lines): a long function is a piece that wants its own name."""
import pathlib
import re
import sys

LIMIT = 80


def strip(text):
    """Blanks comments, string and character literals, keeping newlines and offsets."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i)
            j = end + len(m.group(1)) + 2
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j])); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c); i = j + 1
        else:
            out.append(c); i += 1
    return "".join(out)


def functions(path):
    text = strip(path.read_text())
    text = re.sub(r"^[ \t]*#.*$", lambda m: " " * len(m.group(0)), text, flags=re.M)  # preprocessor
    found = []
    stack = []  # per open brace: "container" or "other" or ("function", start offset, name)
    last = 0    # offset after the last ; { } at the current container level
    for i, c in enumerate(text):
        if c == "{":
            inside_function = any(isinstance(s, tuple) for s in stack)
            head = text[last:i].strip()
            if inside_function:
                stack.append("other")
            elif re.match(r"^(namespace\b|extern\b)", head) or re.search(r"\b(class|struct|union)\b[^()=]*$", head):
                stack.append("container")
            elif "(" in head and not re.search(r"=\s*$", head) and not re.match(r"^(enum)\b", head) \
                    and not re.search(r"\b(class|struct|enum)\b[^()]*$", head):
                name = re.findall(r"([~\w:]+)\s*\(", head)
                stack.append(("function", last + len(text[last:i]) - len(text[last:i].lstrip()), name[0] if name else "?"))
            else:
                stack.append("other")
            last = i + 1
        elif c == "}":
            s = stack.pop() if stack else None
            if isinstance(s, tuple):
                start_line = text.count("\n", 0, s[1]) + 1
                end_line = text.count("\n", 0, i) + 1
                found.append((end_line - start_line + 1, s[2], start_line))
            if not any(isinstance(t, tuple) for t in stack):
                last = i + 1
        elif c == ";" and not any(isinstance(t, tuple) for t in stack):
            last = i + 1
        elif c == ":" and not any(isinstance(t, tuple) for t in stack):
            # access specifiers (public:) end a head; a :: or a constructor's initializer list does not
            head = text[last:i].strip()
            if head in ("public", "private", "protected"):
                last = i + 1
    return found


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else LIMIT
    rows = []
    for f in sorted((root / "src").rglob("*.cpp")) + sorted((root / "src").rglob("*.h")) + \
            sorted((root / "include").rglob("*.h")):
        for n, name, line in functions(f):
            rows.append((n, f"{f.relative_to(root)}:{line}", name))
    rows.sort(reverse=True)
    print(f"{len(rows)} functions; the longest:")
    for n, where, name in rows[:12]:
        print(f"  {n:4d}  {name}  ({where})")
    over = [r for r in rows if r[0] > limit]
    print(f"{len(over)} functions over {limit} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
