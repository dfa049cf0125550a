# Sourced by scripts/test and scripts/conveyor: make .venv (Python >= 3.11) with the project
# and the example task types installed, reinstalling only when a pyproject.toml changed.
# Sets $root and $venv.
#
# Works from any directory. The first run creates .venv (set PYTHON to choose the
# interpreter) and installs the project with the extras it needs; later runs reinstall only
# when pyproject.toml changed.

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
venv="$root/.venv"
stamp="$venv/.conveyor-installed"

die() {
  echo "conveyor setup: $*" >&2
  exit 2
}

check_python() { # $1: interpreter; fails unless it is Python >= 3.11
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

# One environment serves the tests, the operator and the sandbox.
extras="operator,sandbox,test"
# The example task types (docs/task-types.md) are installed too: the tests run them with
# real workers, and the sandbox's workers (started from this .venv) serve them.
examples="examples/tasktypes"

setup_venv() {
  if [[ ! -x "$venv/bin/python" ]]; then
    local python=${PYTHON:-python3}
    command -v "$python" >/dev/null ||
      die "$python not found; install Python >= 3.11 or set PYTHON=/path/to/python3.11"
    check_python "$python" ||
      die "$python is $("$python" -V 2>&1); Conveyor needs Python >= 3.11 (set PYTHON=...)"
    echo "conveyor setup: creating $venv with $("$python" -V 2>&1)" >&2
    "$python" -m venv "$venv"
  fi
  check_python "$venv/bin/python" ||
    die "$venv has $("$venv/bin/python" -V 2>&1); remove it to recreate with Python >= 3.11"

  # Reinstall only when the dependency declaration changed: keeps re-runs fast.
  local want
  want=$("$venv/bin/python" -c \
    'import hashlib, sys; print(hashlib.sha256(open("pyproject.toml", "rb").read()
                                                + open(sys.argv[2], "rb").read()
                                                + sys.argv[1].encode()).hexdigest())' \
    "$extras" "$examples/pyproject.toml")
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "conveyor setup: installing the project into $venv (pyproject.toml changed)" >&2
    rm -f "$stamp"
    # -q hides progress but pip still prints errors; a failure stops here (set -e).
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[$extras]" \
      -e "$examples"
    echo "$want" >"$stamp"
  fi
}

# Two runs at once (two terminals, parallel CI jobs in one checkout) must not create or
# install into the same venv together: serialise the setup, not the tests. The lock lives
# outside the checkout so it never shows up in git status.
if command -v flock >/dev/null; then
  lock="${TMPDIR:-/tmp}/conveyor-test-$(printf '%s' "$root" | cksum | cut -d' ' -f1).lock"
  exec 9>"$lock"
  flock 9
  setup_venv
  exec 9>&-
else
  setup_venv
fi

