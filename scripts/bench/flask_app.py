"""The gunicorn side of the status benchmark: a Flask twin of prefork's `GET /api/session/status`.

It answers from the same session folder (`<instance>/uploads/<session_id>/`) with the same JSON
shape, and does the same kind of work per request: validate the id, stat the folder and the
handful of files that define the state (chatmrpt-server.md §2.4-2.5), and read one small JSON
(`manifest.json`) for the analysis id. Nothing is cached between requests, as in prefork: any
worker may serve any request and state lives only on disk.

What it deliberately does not do is what the real ChatMRPT does on top (pandas, the Flask session
cookie store, the interpreter imports), so its figures are a best case for gunicorn + Flask.

Instance directory: $BENCH_INSTANCE_DIR (default ./instance).
$BENCH_FLASK_IMPORTS (comma-separated module names, e.g. "pandas,numpy") imports those modules in
every worker at startup, unused, to approximate the memory of ChatMRPT's workers (memory.sh).
"""

import importlib
import json
import os
import re

from flask import Flask, jsonify, request

for _module in filter(None, os.environ.get("BENCH_FLASK_IMPORTS", "").split(",")):
    importlib.import_module(_module.strip())

INSTANCE_DIR = os.environ.get("BENCH_INSTANCE_DIR", "instance")
UPLOADS = os.path.join(INSTANCE_DIR, "uploads")
SESSION_ID = re.compile(r"[0-9a-f]{32}")

RAW_DATA = ("raw_data.csv", "raw_data.xlsx")
RAW_SHAPEFILE = "raw_shapefile.zip"
# The design-note rule: any one of these means the analysis is complete.
ANALYSIS_EVIDENCE = (
    "unified_dataset.geoparquet",
    "unified_dataset.csv",
    "analysis_vulnerability_rankings.csv",
    "analysis_vulnerability_rankings_pca.csv",
)
ITN_RESULTS = "itn_distribution_results.json"
MANIFEST = "manifest.json"

app = Flask(__name__)


def _file_size(path):
    """Size of a regular file, or None when it is missing or not a file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size if (st.st_mode & 0o170000) == 0o100000 else None


def _error(status, message):
    return jsonify({"status": "error", "message": message}), status


def _legacy_id(folder):
    """A stable id for a folder without a manifest (the Python system's folders): FNV-1a over the
    evidence files' names, sizes and mtimes, so every worker derives the same id."""
    h = 0xCBF29CE484222325
    found = False
    for name in ANALYSIS_EVIDENCE:
        try:
            st = os.stat(os.path.join(folder, name))
        except OSError:
            continue
        found = True
        for b in name.encode() + st.st_size.to_bytes(8, "little") + st.st_mtime_ns.to_bytes(16, "little"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"legacy-{h:016x}" if found else None


@app.get("/ping")
def ping():
    return jsonify({"status": "ok"})


@app.get("/api/session/status")
def session_status():
    sid = request.headers.get("X-Session-ID") or request.cookies.get("session_id")
    if sid is None:
        return _error(400, "no session: send the session_id cookie or an X-Session-ID header")
    if not SESSION_ID.fullmatch(sid):
        return _error(400, "malformed session id: expected 32 lowercase hex characters")
    folder = os.path.join(UPLOADS, sid)
    if not os.path.isdir(folder):
        return _error(404, "unknown session: create one with POST /api/session")

    csv_loaded = any((_file_size(os.path.join(folder, n)) or 0) > 0 for n in RAW_DATA)
    shapefile_loaded = _file_size(os.path.join(folder, RAW_SHAPEFILE)) is not None
    analysis_complete = any(_file_size(os.path.join(folder, n)) is not None for n in ANALYSIS_EVIDENCE)
    itn_complete = analysis_complete and _file_size(os.path.join(folder, ITN_RESULTS)) is not None

    analysis_id = None
    try:
        with open(os.path.join(folder, MANIFEST), "rb") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        manifest = None
    except (OSError, ValueError):
        return _error(500, "the session's manifest could not be read")
    if manifest is not None:
        # The manifest is the authority when present: an analysis of an older upload generation
        # is not current, and ITN results must belong to the current analysis.
        analysis = manifest.get("analysis") or {}
        current = analysis_complete and analysis.get("generation") == manifest.get("generation")
        analysis_complete = bool(current)
        analysis_id = analysis.get("analysis_id") if current else None
        itn = manifest.get("itn") or {}
        itn_complete = current and itn.get("analysis_id") == analysis_id
    elif analysis_complete:
        analysis_id = _legacy_id(folder)

    return jsonify(
        {
            "status": "success",
            "session_id": sid,
            "data_loaded": csv_loaded,
            "csv_loaded": csv_loaded,
            "shapefile_loaded": shapefile_loaded,
            "analysis_complete": analysis_complete,
            "itn_complete": bool(itn_complete),
            "analysis_id": analysis_id,
            "worker_pid": os.getpid(),
        }
    )
