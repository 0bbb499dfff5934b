"""What the engine's legacy builder cannot build, found in the Dockerfile before it is asked to; and the ignore
file BuildKit reads for a build."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .builder import BUILDX_FIX
from .errors import InputError
from .spec import ImageSpec


@dataclass(frozen=True)
class Finding:
    line: int
    what: str


_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$")
# As BuildKit reads them: `<<` and the word with nothing between (`<< EOF` is not a heredoc).
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG = re.compile(r"--([a-z-]+)(?:=|\s|$)")
# Flags BuildKit added that the legacy builder refuses (or, for some, ignores). COPY/ADD --chown and
# COPY --from are older than BuildKit and fine.
_BUILDKIT_FLAGS = {
    "FROM": {"platform"},
    "RUN": {"mount", "network", "security"},
    "COPY": {"chmod", "link", "parents", "exclude"},
    "ADD": {"chmod", "link", "checksum", "keep-git-dir", "exclude"},
}


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction with continuations joined), comments and heredoc bodies skipped."""
    lines = text.splitlines()
    escape = "\\"
    out: list[tuple[int, str]] = []
    i = 0
    in_directives = True
    while i < len(lines):
        raw = lines[i].strip()
        if in_directives:
            m = _DIRECTIVE.match(raw)
            if m and m[1].lower() == "escape" and m[2] in ("\\", "`"):
                escape = m[2]
            if m:
                out.append((i + 1, raw))  # directives are findings of their own (# syntax=)
                i += 1
                continue
            in_directives = False
        if not raw or raw.startswith("#"):
            i += 1
            continue
        start, parts = i + 1, [raw]
        while parts[-1].endswith(escape) and i + 1 < len(lines):
            parts[-1] = parts[-1][:-1]
            i += 1
            nxt = lines[i].strip()
            if nxt.startswith("#"):
                continue
            parts.append(nxt)
        instruction = " ".join(parts)
        out.append((start, instruction))
        i += 1
        for dash, _, word in _HEREDOC.findall(instruction):
            # The body is not Dockerfile instructions; skip to its terminator.
            while i < len(lines) and (lines[i].lstrip("\t") if dash else lines[i]) != word:
                i += 1
            i += 1
    return out


def scan_dockerfile(text: str) -> list[Finding]:
    """Every use of syntax only BuildKit builds, with its line."""
    findings = []
    for number, line in _logical_lines(text):
        directive = _DIRECTIVE.match(line) if line.startswith("#") else None
        if directive:
            if directive[1].lower() == "syntax":
                findings.append(Finding(number, f"the `# syntax={directive[2]}` directive"))
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags = _BUILDKIT_FLAGS.get(keyword, set())
        rest = rest.lstrip()
        # Flags come first; the exec form (a JSON list) has none.
        while rest.startswith("--"):
            m = _FLAG.match(rest)
            if m and m[1] in flags:
                findings.append(Finding(number, f"{keyword} --{m[1]}"))
            rest = rest.split(None, 1)[1] if " " in rest else ""
        if keyword in ("RUN", "COPY", "ADD") and _HEREDOC.search(rest):
            findings.append(Finding(number, f"a {keyword} heredoc (<<)"))
    return findings


def check_legacy(spec: ImageSpec, ref: str) -> None:
    """InputError when the legacy builder would refuse or mis-build this image."""
    if spec.secrets:
        raise InputError(
            f"failed to build {ref}: build secrets ({', '.join(s.id for s in spec.secrets)}) need BuildKit, and "
            "only the engine's legacy builder is available",
            fix=BUILDX_FIX,
        )
    try:
        text = spec.dockerfile.read_text(errors="replace")
    except OSError as exc:
        raise InputError(
            f"failed to read the Dockerfile {spec.dockerfile}: {exc}", fix="check images[].dockerfile"
        ) from exc
    findings = scan_dockerfile(text)
    if findings:
        where = "; ".join(f"{spec.dockerfile}:{f.line}: {f.what}" for f in findings)
        raise InputError(
            f"failed to build {ref}: the Dockerfile uses BuildKit syntax the legacy builder cannot build ({where})",
            fix=BUILDX_FIX,
        )


def ignore_file(spec: ImageSpec) -> Path | None:
    """The ignore file BuildKit reads for this build: `<Dockerfile name>.dockerignore` next to the Dockerfile
    when there is one (it replaces the context's, it is not added to it), else the context's .dockerignore."""
    own = spec.dockerfile.with_name(spec.dockerfile.name + ".dockerignore")
    if own.is_file():
        return own
    shared = spec.context / ".dockerignore"
    return shared if shared.is_file() else None


def ignore_patterns(path: Path) -> list[str]:
    """The patterns of a .dockerignore file, read as docker-py reads the context's."""
    lines = (line.strip() for line in path.read_text(errors="replace").splitlines())
    return [line for line in lines if line and not line.startswith("#")]
