"""GitHub Actions I/O: masking, annotations, outputs, and the terminal status line."""

from __future__ import annotations

import io
import re
import sys
import threading
import time
from pathlib import Path

from ecs_ship.gha import Reporter, code_block


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class SlowPipe(io.StringIO):
    """A stream whose writes let other threads run, as writes to a real pipe do."""

    def write(self, text: str) -> int:
        time.sleep(0.0001)
        return super().write(text)


def test_secrets_are_masked_and_redacted_everywhere(tmp_path: Path) -> None:
    out = io.StringIO()
    outputs = tmp_path / "out"
    r = Reporter(out, {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs)})
    r.mask("s3cret")
    r.line("login with s3cret failed", "api")
    r.output("note", "token=s3cret")
    text = out.getvalue()
    assert text.splitlines()[0] == "::add-mask::s3cret"
    assert "s3cret" not in "\n".join(text.splitlines()[1:]) and "login with *** failed" in text
    assert outputs.read_text() == "note=token=***\n"


def test_error_annotation_names_the_file_from_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    spec = tmp_path / "deploy" / "ecs-ship.yml"
    out = io.StringIO()
    r = Reporter(out, {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path)})
    r.error("bad key: x\nsecond line", file=str(spec), line=7, title="ecs-ship spec")
    assert out.getvalue() == "::error file=deploy/ecs-ship.yml,line=7,title=ecs-ship spec::bad key: x%0Asecond line\n"


def test_multiline_outputs_use_a_delimiter(tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    Reporter(io.StringIO(), {"GITHUB_OUTPUT": str(outputs)}).output("diff", "a\nb")
    lines = outputs.read_text().splitlines()
    assert lines[0].startswith("diff<<") and lines[1:3] == ["a", "b"] and lines[3] == lines[0].split("<<")[1]


def test_status_line_only_on_a_terminal() -> None:
    plain = io.StringIO()
    r = Reporter(plain, {})
    r.progress("working")
    r.line("hello")
    assert "working" not in plain.getvalue() and not r.live

    tty = Tty()
    r = Reporter(tty, {})
    r.progress("working")
    r.line("hello")
    r.progress("")
    text = tty.getvalue()
    # The log line is printed above a redrawn status line, which is removed at the end.
    assert text.startswith("\r\033[Kworking\r\033[K") and "hello\nworking" in text and text.endswith("\r\033[K")


KEY_FILE = """{
  "type": "service_account",
  "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n",
  "client_email": "deployer@project.iam.gserviceaccount.com"
}
"""


def test_every_line_of_a_multiline_secret_is_masked() -> None:
    out = io.StringIO()
    r = Reporter(out, {"GITHUB_ACTIONS": "true"})
    r.mask(KEY_FILE)
    masked = [line.removeprefix("::add-mask::") for line in out.getvalue().splitlines()]
    long_lines = [line.strip() for line in KEY_FILE.splitlines() if len(line.strip()) >= 4]
    assert masked == long_lines
    # "{" and "}" would star out braces all over the log.
    assert "{" not in masked and "}" not in masked

    # A tool that prints one line of the key (a JSON parse error, say) has it redacted, as does the whole file.
    r.line(f"parse error near {KEY_FILE.splitlines()[2].strip()} and {KEY_FILE}")
    printed = out.getvalue().splitlines()[len(masked) :]
    assert "MIIEvQ" not in "\n".join(printed) and "deployer@" not in "\n".join(printed)
    # Masking the same secret again registers nothing new.
    before = out.getvalue()
    r.mask(KEY_FILE)
    assert out.getvalue() == before


def test_mask_escapes_command_data() -> None:
    # The runner unescapes ::add-mask:: data, so "%25" must be sent as "%2525" to mask "%25".
    out = io.StringIO()
    Reporter(out, {"GITHUB_ACTIONS": "true"}).mask("pa%25ss")
    assert out.getvalue() == "::add-mask::pa%2525ss\n"


def test_masking_from_many_threads_while_redacting() -> None:
    # Parallel services mask their registry passwords while other threads print through redact().
    out = SlowPipe()
    r = Reporter(out, {"GITHUB_ACTIONS": "true"})
    secrets = [f"secret-{i:04d}" for i in range(300)]
    errors: list[BaseException] = []
    done = threading.Event()
    start = threading.Barrier(6)

    def redact_until_done() -> None:
        start.wait()
        try:
            while not done.is_set():
                r.redact("nothing to see " + secrets[-1])
                r.error("failed with " + secrets[0])
        except BaseException as exc:  # any exception at all is the failure looked for
            errors.append(exc)

    def mask_all() -> None:
        start.wait()
        for secret in secrets:
            r.mask(secret)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        readers = [threading.Thread(target=redact_until_done) for _ in range(2)]
        writers = [threading.Thread(target=mask_all) for _ in range(4)]
        for t in readers + writers:
            t.start()
        for t in writers:
            t.join()
        done.set()
        for t in readers:
            t.join()
    finally:
        sys.setswitchinterval(previous)
    assert errors == []
    # Each secret is registered exactly once, however many threads mask it at the same time.
    registered = [line for line in out.getvalue().splitlines() if line.startswith("::add-mask::")]
    assert sorted(registered) == sorted(f"::add-mask::{s}" for s in secrets)
    assert r.redact(" ".join(secrets)) == " ".join(["***"] * len(secrets))


def closes_fence(line: str, fence: str) -> bool:
    """CommonMark 4.5: a closing code fence is up to 3 spaces, a run of the fence's character at least as long as
    the opening fence, then only spaces or tabs."""
    match = re.fullmatch(r" {0,3}(`+)[ \t]*", line)
    return match is not None and len(match[1]) >= len(fence)


HOSTILE = [
    "```",
    "   ````",
    "```html",
    "~~~",
    "``` <img src=x onerror=alert(1)>",
    "<img src=x>",
    "</details><script>alert(1)</script>",
    "[click](https://example.com) **bold** | table | cell |",
    "inline `code` and ``double`` and `````five`````",
    "x" * 100_000,
    "",
]


def test_code_block_cannot_be_closed_by_its_content() -> None:
    block = code_block(HOSTILE)
    lines = block.split("\n")
    fence = lines[0]
    # Longer than the longest backtick run in the content (five), and closed by the same fence.
    assert fence == "``````" and lines[-1] == fence
    # Everything between is the content, unchanged: nothing is escaped or dropped.
    assert lines[1:-1] == HOSTILE
    assert not any(closes_fence(line, fence) for line in lines[1:-1])


def test_code_block_of_plain_lines_uses_three_backticks() -> None:
    assert code_block(["task stopped: exit 1", "OOM"]) == "```\ntask stopped: exit 1\nOOM\n```"
    assert code_block([]) == "```\n\n```"
    # A fixed ``` fence is closed by a line of three backticks; the chosen one is not.
    assert closes_fence("```", "```")
    assert not closes_fence("```", code_block(["```", "<img src=x>"]).split("\n")[0])


def test_a_group_left_open_is_closed_once_before_the_error() -> None:
    stream = io.StringIO()
    out = Reporter(stream=stream, environ={"GITHUB_ACTIONS": "true"})
    abandoned = out.group("image registry/app:1")
    abandoned.__enter__()  # a build thread that never returns
    out.end_groups()
    out.error("interrupted while building")
    out.end_groups()  # nothing left to close
    assert stream.getvalue().splitlines() == [
        "::group::image registry/app:1",
        "::endgroup::",
        "::error::interrupted while building",
    ]
