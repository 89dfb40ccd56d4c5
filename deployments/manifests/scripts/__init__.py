"""The manifests' shell scripts (POSIX sh), kept as real files so shellcheck can check them.

* ``fetch.sh`` — the initFetch init container's download-and-verify script;
* ``sync.sh`` — the hostPath DaemonSet's sync loop;
* ``lib.sh`` — the functions both use (download, verify, refuse bad entries).

Each script sources ``lib.sh`` with `SOURCE_LIB`'s two lines, which is what shellcheck follows
(``shellcheck deployments/manifests/scripts/*.sh``); a pod gets one self-contained script, so
at import those two lines are replaced by ``lib.sh`` after its header (the lines before its
first empty line). The files are read once; values never reach a script by text substitution,
only through environment variables or a data file.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["SOURCE_LIB", "fetch_script", "sync_script"]

SOURCE_LIB = '# shellcheck source=SCRIPTDIR/lib.sh\n. "$(dirname "$0")/lib.sh"\n'


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def _with_library(name: str, library: str) -> str:
    script = _read(name)
    if script.count(SOURCE_LIB) != 1:
        raise RuntimeError(f"{name} must source lib.sh exactly once, with {SOURCE_LIB!r}")
    return script.replace(SOURCE_LIB, library)


_LIBRARY = _read("lib.sh").partition("\n\n")[2]
_FETCH_SCRIPT = _with_library("fetch.sh", _LIBRARY)
_SYNC_SCRIPT = _with_library("sync.sh", _LIBRARY)


def fetch_script() -> str:
    """The init container's download-and-verify script (POSIX sh)."""
    return _FETCH_SCRIPT


def sync_script() -> str:
    """The hostPath DaemonSet's sync script (POSIX sh)."""
    return _SYNC_SCRIPT
