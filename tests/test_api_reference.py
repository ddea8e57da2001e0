"""docs/api.md agrees with the generated OpenAPI document; the docs link only inside the repository.

The API reference is written for client developers (docs/api.md); the OpenAPI document the
app generates is its machine-readable half. The reference ends with a table, one row per
operation, between `<!-- operations:begin -->` and `<!-- operations:end -->`:

    | method | path | statuses | operation |
    |---|---|---|---|
    | GET | /api/v1/progress/{courseId} | 200, 400, 401, 403, 404, 413, 503 | the caller's record |

These tests read that table and compare it with `<prefix>/openapi.json` as the app serves it:
the same (method, path) operations and, for each, the same set of statuses.

The second half checks every link of README.md and docs/*.md: a relative link names a file
(and heading) that exists in the repository; nothing links outside it.
"""
import re
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import pytest

from progress_service.progress import mount_of

from .support import PREFIX

ROOT = Path(__file__).resolve().parent.parent
API_REFERENCE = ROOT / "docs" / "api.md"
DOC = f"{PREFIX}/openapi.json"
BEGIN, END = "<!-- operations:begin -->", "<!-- operations:end -->"
HEADER = ["method", "path", "statuses", "operation"]
HTTP_METHODS = {"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"}
STATUS = re.compile(r"[1-5][0-9][0-9]")
TABLE_PATH = re.compile(r"/[A-Za-z0-9._~/{}-]*")

# (method, path) -> statuses the service answers that openapi.py's OPERATIONS does not declare.
# Every GET answers 413 when its declared body is over PROGRESS_MAX_BODY_BYTES (routes.limit_body
# runs before every view of the blueprint), but OPERATIONS gives 413 to the writes only.
class TableError(ValueError):
    """The operations table of docs/api.md is missing or not in the agreed format."""


def _cells(line):
    """The cells of one Markdown table row, stripped; TableError if it is not a row."""
    line = line.strip()
    if not (line.startswith("|") and line.endswith("|")) or len(line) < 2:
        raise TableError(f"not a table row: {line!r}")
    return [cell.strip() for cell in line[1:-1].split("|")]


def parse_operations(text):
    """{(METHOD, path): frozenset of statuses} from the table between the markers of `text`."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise TableError(f"docs/api.md must hold exactly one {BEGIN} ... {END} table")
    body = text.split(BEGIN, 1)[1].split(END, 1)[0]
    lines = [line for line in body.strip().splitlines() if line.strip()]
    if len(lines) < 3:
        raise TableError("the operations table has no rows")
    header, rule, *rows = lines
    if [cell.lower() for cell in _cells(header)] != HEADER:
        raise TableError(f"the table's header must be {HEADER}, not {_cells(header)}")
    if not all(re.fullmatch(r":?-+:?", cell) for cell in _cells(rule)) or len(_cells(rule)) != len(HEADER):
        raise TableError(f"the second line must separate the header: {rule!r}")
    operations = {}
    for row in rows:
        cells = _cells(row)
        if len(cells) != len(HEADER):
            raise TableError(f"{len(HEADER)} cells expected: {row!r}")
        method, path, statuses, _what = cells
        if method not in HTTP_METHODS:
            raise TableError(f"not an HTTP method in upper case: {method!r} in {row!r}")
        if not TABLE_PATH.fullmatch(path):
            raise TableError(f"not a path (plain text, {{name}} for a parameter): {path!r} in {row!r}")
        codes = [code.strip() for code in statuses.split(",")]
        if not all(STATUS.fullmatch(code) for code in codes):
            raise TableError(f"statuses must be three-digit codes separated by commas: {statuses!r}")
        if codes != sorted(set(codes)):
            raise TableError(f"statuses must be ascending, each once: {statuses!r}")
        if (method, path) in operations:
            raise TableError(f"{method} {path} has two rows")
        operations[(method, path)] = frozenset(codes)
    return operations


def generated_operations(document):
    """{(METHOD, path): frozenset of statuses} of an OpenAPI document."""
    return {(method.upper(), path): frozenset(str(status) for status in operation["responses"])
            for path, item in document["paths"].items()
            for method, operation in item.items() if method.upper() in HTTP_METHODS}


def _show(statuses):
    """Statuses for a message, in order."""
    return ", ".join(sorted(statuses)) or "nothing"


def disagreements(documented, generated):
    """Every difference between the table and the document; [] when they agree."""
    found = []
    for key in sorted(generated.keys() - documented.keys()):
        found.append(f"{' '.join(key)} is in the OpenAPI document ({_show(generated[key])}) "
                     f"but has no row in docs/api.md")
    for key in sorted(documented.keys() - generated.keys()):
        found.append(f"{' '.join(key)} has a row in docs/api.md but is not in the OpenAPI document")
    for key in sorted(documented.keys() & generated.keys()):
        if documented[key] != generated[key]:
            found.append(f"{' '.join(key)}: docs/api.md lists {_show(documented[key])}; the OpenAPI "
                         f"document declares {_show(generated[key])}")
    return found


@pytest.fixture
def generated(app):
    """The operations of the OpenAPI document the app generates and serves."""
    response = app.test_client().get(DOC)
    assert response.status_code == 200
    return generated_operations(response.get_json())


@pytest.fixture(scope="module")
def reference():
    """docs/api.md."""
    return API_REFERENCE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def documented(reference):
    """The operations table of docs/api.md."""
    return parse_operations(reference)


# --- the reference and the document -----------------------------------------------------------

def test_the_reference_and_the_document_have_the_same_operations(documented, generated):
    """Each (method, path) of the OpenAPI document has a row in docs/api.md, and nothing else does."""
    problems = [problem for problem in disagreements(documented, generated)
                if "no row" in problem or "not in the OpenAPI document" in problem]
    assert not problems, "\n".join(problems)
    assert len(documented) == len(generated) >= 8


def test_each_operation_has_the_same_statuses(documented, generated):
    """The statuses of each row are those the document declares."""
    problems = disagreements(documented, generated)
    assert not problems, "\n".join(problems)


def test_even_a_read_with_a_declared_body_over_the_limit_is_413(app, generated):
    """Why the reads declare 413: the body limit is checked before anything else, on any method."""
    limit = mount_of(app).settings.max_body
    client = app.test_client()
    for (method, path), statuses in generated.items():
        assert "413" in statuses, (method, path)
        url = path.replace("{courseId}", "0123456789abcdef01234567").replace("{lectureId}", "0123456789abcdef01234567")
        response = client.open(url, method=method, data=b"x" * (limit + 1))  # declared length, no token
        assert response.status_code == 413, (method, url)
        assert response.get_json() == {"status": "fail", "message": "Request body too large"}


def test_every_operation_has_its_section_in_the_reference(documented, reference):
    """Each row of the table is described in a section headed with its method and path."""
    headings = {line.strip() for line in reference.splitlines() if line.startswith("### ")}
    missing = [f"{method} {path}" for method, path in documented
               if f"### `{method} {path}`" not in headings]
    assert not missing, f"no `### `METHOD path`` section for: {missing}"


# --- the comparison itself notices every change --------------------------------------------------

BASE = {("GET", "/p/{id}"): frozenset({"200", "401"}), ("POST", "/p/{id}/x"): frozenset({"200", "409"})}


@pytest.mark.parametrize("documented, generated", [
    ({("GET", "/p/{id}"): BASE[("GET", "/p/{id}")]}, BASE),                      # the doc loses an operation
    (BASE, {("GET", "/p/{id}"): BASE[("GET", "/p/{id}")]}),                      # the document loses one
    ({**BASE, ("GET", "/p"): frozenset({"200"})}, BASE),                          # the doc gains one
    (BASE, {**BASE, ("DELETE", "/p/{id}"): frozenset({"204"})}),                  # the document gains one
    ({**BASE, ("GET", "/p/{id}"): frozenset({"200"})}, BASE),                     # the doc loses a status
    (BASE, {**BASE, ("GET", "/p/{id}"): frozenset({"200"})}),                     # the document loses one
    ({**BASE, ("GET", "/p/{id}"): frozenset({"200", "401", "404"})}, BASE),       # the doc gains a status
    (BASE, {**BASE, ("POST", "/p/{id}/x"): frozenset({"200", "409", "503"})}),    # the document gains one
])
def test_any_gained_or_lost_operation_or_status_is_a_disagreement(documented, generated):
    """Either side gaining or losing an operation or a status makes the comparison fail."""
    assert disagreements(BASE, BASE) == []
    assert disagreements(documented, generated)


TABLE = f"""{BEGIN}
| method | path | statuses | operation |
|---|---|---|---|
| GET | /p/{{id}} | 200, 401 | one |
{END}"""


def test_the_table_format_is_enforced():
    """The parser reads the agreed format and refuses anything looser."""
    assert parse_operations(TABLE) == {("GET", "/p/{id}"): frozenset({"200", "401"})}
    broken = [
        TABLE.replace(BEGIN, ""),                                  # no markers
        TABLE + "\n" + TABLE,                                      # two tables
        TABLE.replace("200, 401", "401, 200"),                     # not ascending
        TABLE.replace("200, 401", "200, 200, 401"),                # repeated
        TABLE.replace("200, 401", "200 401"),                      # not separated by commas
        TABLE.replace("200, 401", "200, 4xx"),                     # not a code
        TABLE.replace("| GET |", "| get |"),                       # lower case
        TABLE.replace("/p/{id}", "`/p/{id}`"),                     # decorated path
        TABLE.replace(" one |", " one | extra |"),                 # a fifth cell
        TABLE.replace("| GET | /p/{id} | 200, 401 | one |", ""),   # no rows
        TABLE.replace(f"\n{END}", "\n| GET | /p/{id} | 200 | again |\n" + END),  # a row twice
    ]
    for text in broken:
        with pytest.raises(TableError):
            parse_operations(text)


# --- links of README.md and docs/ ------------------------------------------------------------

LINKED_DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("**/*.md"))]
FENCE = re.compile(r"^ {0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]*:[^>\s]*)>")
HTML_LINK = re.compile(r"\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)
BARE_URL = re.compile(r"\b(?:https?|ftp)://[^\s)>\]\"'`]+", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Hosts that name no place outside the repository: the local machine and the names reserved
# for examples (RFC 2606), as in "CLIENT_URL=https://lms.example.com".
LOCAL_HOST = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\]|(.+\.)?example(\.com|\.org|\.net)?)$", re.IGNORECASE)


def prose_lines(text):
    """(line number, line) outside fenced code blocks, with inline code spans removed."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif match.group(1) == fence:
                fence = None
            continue
        if fence is None:
            yield number, CODE_SPAN.sub("", line)


def links(text):
    """(line number, target) of every link of a Markdown text (code excluded)."""
    for number, line in prose_lines(text):
        targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
        targets += [m.group(1) for m in REFERENCE_DEFINITION.finditer(line)]
        targets += [m.group(1) for m in AUTOLINK.finditer(line)]
        targets += [m.group(1) for m in HTML_LINK.finditer(line)]
        rest = AUTOLINK.sub("", INLINE_LINK.sub("", line))
        # GitHub links bare URLs too, without their trailing punctuation.
        targets += [m.group(0).rstrip(".,;:!?") for m in BARE_URL.finditer(rest)]
        for target in targets:
            yield number, target.strip("<>")


def slug(heading):
    """The anchor GitHub gives a heading: rendered text, lower case, punctuation dropped, - for spaces."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text):
    """Every anchor of a Markdown text: its headings' slugs (-1, -2 for repeats) and HTML ids."""
    found, seen = set(), {}
    for _number, line in prose_lines(text):
        match = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(re.findall(r"<a\s+(?:id|name)=[\"']([^\"']+)[\"']", line))
    return found


def repository_files():
    """Paths (relative, POSIX) of the files git would commit: tracked, or new and not ignored.

    None outside a git work tree (an unpacked sdist): then existence on disk decides.
    """
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                                cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {name for name in listed.decode("utf-8", "surrogateescape").split("\0") if name}


def link_problem(source, target, files):
    """Why `target`, linked from `source`, is not a link inside the repository; None if it is."""
    if target.startswith("//") or SCHEME.match(target):
        host = urlsplit(target).hostname or ""
        if urlsplit(target).scheme.lower() in ("http", "https") and LOCAL_HOST.match(host):
            return None  # the reader's own machine, or an example name
        return "links outside the repository"
    path, _, fragment = target.partition("#")
    resolved = (source.parent / unquote(path)).resolve() if path else source
    try:
        relative = resolved.relative_to(ROOT)
    except ValueError:
        return f"points outside the repository ({resolved})"
    name = PurePosixPath(*relative.parts).as_posix()
    if not resolved.exists():
        return f"{name} does not exist"
    if files is not None and name not in files and not (
            resolved.is_dir() and any(file.startswith(f"{name}/") for file in files)):
        return f"{name} is not part of the repository (ignored by git)"
    if fragment and resolved.suffix == ".md":
        if fragment not in anchors(resolved.read_text(encoding="utf-8")):
            return f"{name} has no heading #{fragment}"
    return None


def test_the_linked_docs_are_found():
    """README.md and the docs are where this test looks for them (docs/api.md among them)."""
    names = {path.relative_to(ROOT).as_posix() for path in LINKED_DOCS}
    assert {"README.md", "docs/api.md"} <= names


@pytest.mark.parametrize("document", LINKED_DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_link_stays_inside_the_repository_and_arrives(document):
    """No URL to another site, no ../ out of the checkout (../shared/...), no missing file or heading."""
    files = repository_files()
    problems = []
    for number, target in links(document.read_text(encoding="utf-8")):
        problem = link_problem(document, target, files)
        if problem:
            problems.append(f"{document.relative_to(ROOT)}:{number}: {target}: {problem}")
    assert not problems, "\n".join(problems)


def test_the_link_check_catches_what_it_must():
    """The checker itself: outside links, missing files and headings are refused; good ones pass."""
    readme, api = ROOT / "README.md", API_REFERENCE
    files = repository_files()
    assert link_problem(readme, "../shared/CONTRACT.md", files)
    assert link_problem(api, "../../shared/CONTRACT.md", files)
    assert link_problem(readme, "https://schemathesis.readthedocs.io", files)
    assert link_problem(readme, "//cdn.jsdelivr.net/x.js", files)
    assert link_problem(readme, "mailto:someone@lms.org", files)
    assert link_problem(readme, "docs/nothing-here.md", files)
    assert link_problem(readme, "docs/api.md#no-such-heading", files)
    assert link_problem(readme, "docs/api.md#13-all-operations", files) is None
    assert link_problem(api, "mounting.md", files) is None
    assert link_problem(api, "#2-authentication", files) is None
    assert link_problem(readme, "http://127.0.0.1:4000/docs", files) is None
    text = "[a](x.md) `[b](y.md)` <https://z.org>\n```\n[c](w.md)\n```\nsee https://q.org/p."
    assert [target for _n, target in links(text)] == ["x.md", "https://z.org", "https://q.org/p"]
