#!/usr/bin/env bash
# check-banned.sh — STYLE.md habit 8 and 14: banned functions in src/.
# sprintf/strcpy/strcat/strtok/atoi/gets anywhere; raw malloc/calloc/realloc/free outside core/alloc.c.
set -u
cd "$(dirname "$0")/.."
bad=0
if git grep -nE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)\s*\(' -- 'src/*.c' 'src/*.h'; then bad=1; fi
if git grep -nE '(^|[^_a-z])(malloc|calloc|realloc|free|strdup|strndup)\s*\(' -- 'src/*.c' 'src/*.h' \
    ':!src/core/alloc.c' ':!src/core/alloc.h' | grep -vE '^\S+:[0-9]+:\s*(\*|//|/\*)'; then bad=1; fi
if [ $bad -ne 0 ]; then echo "check-banned: banned functions found (see STYLE.md habits 8 and 14)"; exit 1; fi
echo "check-banned: ok"
