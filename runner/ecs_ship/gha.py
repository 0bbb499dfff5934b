"""Where output goes: plain timestamped lines, plus GitHub Actions' own channels when GITHUB_ACTIONS=true.

In Actions: step outputs via $GITHUB_OUTPUT, a job summary via $GITHUB_STEP_SUMMARY, ``::error::``
annotations (with file and line for spec errors), ``::group::`` around build and push logs, and
``::add-mask::`` for every secret before anything could print it. Every line printed anywhere also has
registered secrets replaced, so a token echoed by a tool (a registry error, say) never reaches the log.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


# GitHub masks every occurrence of a masked string anywhere in the log, so a line of a multi-line secret shorter
# than this ("{", "}," or a blank line of a JSON key file) would star out characters all over the log, and its
# stars would say which characters the secret contains. Lines this short carry no secret on their own.
MIN_MASKED_LINE = 4


def _mask_pieces(secret: str) -> list[str]:
    """What to register with ``::add-mask::``, which GitHub matches one log line at a time.

    A multi-line secret (a service-account JSON key, a PEM private key) registered whole would mask only its first
    line, so each of its lines is registered on its own.
    """
    lines = secret.splitlines()
    if len(lines) <= 1:
        return [secret]
    return [line.strip() for line in lines if len(line.strip()) >= MIN_MASKED_LINE]


def code_block(lines: Sequence[str]) -> str:
    """A Markdown fenced code block showing ``lines`` verbatim, which no line of them can close early.

    The lines are log tails of failed tasks: anyone who can make a task print can choose them, and a line of
    backticks would end a fixed fence and render the rest (links, images, HTML) in the job summary. CommonMark
    closes a backtick fence only with a backtick run at least as long as the opening one, so the fence is one
    longer than the longest run anywhere in the content. Nothing else needs neutralising: inside a code block,
    HTML, ``~~~`` and Markdown are plain text.
    """
    text = "\n".join(lines)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


class Reporter:
    def __init__(
        self,
        stream: TextIO | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.env = dict(os.environ if environ is None else environ)
        self.in_actions = self.env.get("GITHUB_ACTIONS") == "true"
        # A terminal gets one live status line under the log; logs and pipes get only whole lines.
        self.live = not self.in_actions and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._status = ""
        # Longest first, so a secret containing another is replaced whole. Never mutated: mask() swaps in a new
        # tuple under the lock, and redact() (called from any thread, with or without the lock) reads it once.
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._open_groups = 0

    # --- secrets --------------------------------------------------------------------------------
    def mask(self, secret: str) -> None:
        if not secret:
            return
        with self._lock:
            if secret in self._secrets:
                return
            pieces = [p for p in _mask_pieces(secret) if p not in self._secrets]
            # The whole value too: redact() sees whole texts, where a secret may span lines.
            known = {*self._secrets, secret, *pieces}
            self._secrets = tuple(sorted(known, key=len, reverse=True))
            if self.in_actions:
                for piece in pieces:
                    # The runner unescapes command data, so an unescaped "%25" in a secret would mask "%".
                    self._write(f"::add-mask::{_escape_data(piece)}")

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # --- lines ----------------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        if self._status:
            self.stream.write("\r\033[K")  # clear the status line, print the log line, then redraw it
        self.stream.write(text + "\n")
        if self._status:
            self.stream.write(self._status)
        self.stream.flush()

    def progress(self, text: str) -> None:
        """Replace the live status line (terminals only); an empty text removes it."""
        if not self.live:
            return
        with self._lock:
            width = 200
            self._status = self.redact(text)[:width]
            self.stream.write("\r\033[K" + self._status)
            self.stream.flush()

    def line(self, text: str, label: str | None = None) -> None:
        stamp = time.strftime("%H:%M:%S")
        prefix = f"[{label}] " if label else ""
        with self._lock:
            for part in self.redact(text).splitlines() or [""]:
                self._write(f"{stamp} {prefix}{part}")

    def raw(self, text: str) -> None:
        with self._lock:
            self._write(self.redact(text))

    def error(
        self, message: str, *, file: str | None = None, line: int | None = None, title: str | None = None
    ) -> None:
        message = self.redact(message)
        with self._lock:
            if self.in_actions:
                props = []
                if file:
                    props.append(f"file={_escape_property(self._workspace_relative(file))}")
                if line:
                    props.append(f"line={line}")
                if title:
                    props.append(f"title={_escape_property(title)}")
                self._write(f"::error {','.join(props)}::{_escape_data(message)}".replace("::error ::", "::error::"))
            else:
                for part in message.splitlines():
                    sys.stderr.write(f"error: {part}\n")
                sys.stderr.flush()

    def _workspace_relative(self, file: str) -> str:
        """Annotations attach to files by their path from the repository root."""
        workspace = self.env.get("GITHUB_WORKSPACE")
        if not workspace:
            return file
        try:
            return str(Path(file).resolve().relative_to(Path(workspace).resolve()))
        except ValueError:
            return file

    def warning(self, message: str, label: str | None = None) -> None:
        if self.in_actions:
            with self._lock:
                self._write(f"::warning::{_escape_data(self.redact(message))}")
        else:
            self.line(f"warning: {message}", label)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        if self.in_actions:
            with self._lock:
                self._open_groups += 1
                self._write(f"::group::{self.redact(title)}")
        try:
            yield
        finally:
            if self.in_actions:
                with self._lock:
                    if self._open_groups:
                        self._open_groups -= 1
                        self._write("::endgroup::")

    def end_groups(self) -> None:
        """Close a group a service left open (a build abandoned after an interruption): the error and the
        summary that follow must not be folded away inside it."""
        with self._lock:
            if self._open_groups:
                self._open_groups = 0
                self._write("::endgroup::")

    # --- step outputs and summary ---------------------------------------------------------------
    def output(self, name: str, value: str) -> None:
        path = self.env.get("GITHUB_OUTPUT")
        if not path:
            return
        value = self.redact(value)
        with self._lock, Path(path).open("a", encoding="utf-8") as f:
            if "\n" in value:
                delim = f"ecs_ship_{uuid.uuid4().hex}"
                f.write(f"{name}<<{delim}\n{value}\n{delim}\n")
            else:
                f.write(f"{name}={value}\n")

    def summary(self, markdown: str) -> None:
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if not path:
            return
        with self._lock, Path(path).open("a", encoding="utf-8") as f:
            f.write(self.redact(markdown) + "\n")
