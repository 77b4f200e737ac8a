#!/bin/sh
# run-golden.sh: every case of tests/policy/cases/ through the decision
# engine (tests/policy/golden.c); run by "make check" with GOLDEN and SRCDIR.
set -u
exec "${GOLDEN:?}" "${SRCDIR:?}/tests/policy/rules" "$SRCDIR"/tests/policy/cases/*.case
