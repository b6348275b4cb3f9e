"""Result records of the benchmark suite: schema, run environment, device slug, Markdown table.

Nothing here imports Keras, so the suite's driver (``python -m benchmarks``) can use it before
any backend is chosen. A record is a flat dict::

    name            what was measured ("pqmf16 analysis, compiled, batch 8")
    benchmark       the suite item that produced it ("layers", "model:vae", ...)
    backend         Keras backend of the process that measured it
    value, unit     the figure; every speed is a rate (higher is better)
    reference       the reference's figure in the same unit, or None
    reference_name  what the reference is
    reference_kind  "measured" (in the same run) or "published" (not measured here), or None
    ratio           value / reference, or None
    settings        dict of the settings that produced the figure
    note            free text, or None
    device, python, keras, backend_version, quick, date   the run's environment
"""
import datetime
import math
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

REQUIRED_KEYS = ("name", "benchmark", "backend", "value", "unit", "reference", "reference_name",
                 "reference_kind", "ratio", "settings", "note", "device", "python", "keras",
                 "backend_version", "quick", "date")

#: backend name -> the module that must be importable for it
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def record(name, value, unit, *, reference=None, reference_name=None, settings=None, note=None,
           published=False):
    """One result record (environment fields are added by the worker that runs the benchmark).

    Args:
        name: what was measured.
        value: the figure (a rate: higher is better).
        unit: its unit.
        reference: the reference's figure in the same unit (None when there is none).
        reference_name: what the reference is.
        settings: dict of settings (sizes, runs, modes).
        note: free text.
        published: the reference is a published figure, not measured in this run.
    """
    value = float(value)
    ref = None if reference is None else float(reference)
    return {
        "name": name, "value": value, "unit": unit, "reference": ref,
        "reference_name": reference_name if ref is not None else None,
        "reference_kind": None if ref is None else ("published" if published else "measured"),
        "ratio": value / ref if ref else None,
        "settings": dict(settings or {}), "note": note,
    }


def cpu_name():
    """The CPU's model name from /proc/cpuinfo (else platform's processor or machine)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus():
    """CPUs this process may run on (``taskset`` narrows it), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def gpu_names():
    """Names of the NVIDIA GPUs ``nvidia-smi`` lists (empty without one)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def device_slug():
    """File-name slug of the machine: ``gpu-<name>`` (plus ``-xN`` for N GPUs) when an NVIDIA
    GPU is visible, else ``cpu-<model>-<N>c`` with the machine's logical CPU count."""
    gpus = gpu_names()
    if gpus:
        return f"gpu-{_slug(gpus[0])}" + (f"-x{len(gpus)}" if len(gpus) > 1 else "")
    name = re.sub(r"\((r|tm)\)|\bcpu\b|@.*$|\d+-core processor", "", cpu_name(), flags=re.I)
    return f"cpu-{_slug(name)}-{os.cpu_count()}c"


def now():
    """The local time, ISO 8601 to the second with its UTC offset."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def environment(backend, backend_version, keras_version, device, quick):
    """The run fields every record carries."""
    return {"backend": backend, "backend_version": backend_version, "keras": keras_version,
            "python": platform.python_version(), "device": device, "quick": bool(quick),
            "date": now()}


def validate(rec, rel_tol=1e-6):
    """Problems with a record (an empty list when it is well formed)."""
    problems = [f"missing key {k!r}" for k in REQUIRED_KEYS if k not in rec]
    if problems:
        return problems
    if not isinstance(rec["value"], (int, float)) or not math.isfinite(rec["value"]):
        problems.append(f"value {rec['value']!r} is not a finite number")
    if not isinstance(rec["settings"], dict):
        problems.append("settings is not a dict")
    ref = rec["reference"]
    if ref is None:
        if rec["ratio"] is not None:
            problems.append("ratio without a reference")
    elif not (isinstance(ref, (int, float)) and math.isfinite(ref) and ref > 0):
        problems.append(f"reference {ref!r} is not a finite positive number")
    elif rec["ratio"] is None or not math.isclose(rec["ratio"], rec["value"] / ref,
                                                 rel_tol=rel_tol):
        problems.append(f"ratio {rec['ratio']!r} != value / reference {rec['value'] / ref!r}")
    elif not rec["reference_name"] or rec["reference_kind"] not in ("measured", "published"):
        problems.append("a reference needs reference_name and reference_kind")
    return problems


def _fmt(x):
    """A figure with 3 significant digits (plain notation up to 1e6)."""
    if x is None:
        return ""
    if x == 0 or 1e-3 <= abs(x) < 1e6:
        digits = max(0, 2 - int(math.floor(math.log10(abs(x))))) if x else 0
        return f"{x:,.{digits}f}"
    return f"{x:.3g}"


def _settings_text(settings):
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def markdown_table(records):
    """Markdown table with a row per record: benchmark | backend | value | reference | ratio |
    settings (published references are marked so)."""
    lines = ["| benchmark | backend | value | reference | ratio | settings |",
             "|---|---|---|---|---|---|"]
    for r in records:
        ref = ""
        if r["reference"] is not None:
            kind = " (published, not measured here)" if r["reference_kind"] == "published" else ""
            ref = f"{_fmt(r['reference'])} {r['unit']}: {r['reference_name']}{kind}"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else ""
        cells = [r["name"], r["backend"], f"{_fmt(r['value'])} {r['unit']}", ref, ratio,
                 _settings_text(r["settings"])]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def text_table(records):
    """Plain-text table for the terminal: name, backend, value, reference, ratio."""
    rows = [(r["name"], r["backend"] or "", f"{_fmt(r['value'])} {r['unit']}",
             "" if r["reference"] is None else
             f"{_fmt(r['reference'])} ({r['reference_name']}"
             f"{', published' if r['reference_kind'] == 'published' else ''})",
             "" if r["ratio"] is None else f"{r['ratio']:.2f}x") for r in records]
    head = ("benchmark", "backend", "value", "reference", "ratio")
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {:>%d}" % widths[-1]
    return "\n".join([fmt.format(*head), "-" * (sum(widths) + 2 * len(widths) - 2)]
                     + [fmt.format(*row) for row in rows])
