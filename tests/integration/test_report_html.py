"""report --html against a real sandbox, rendered in a real headless browser (Debian's
chromium, which scripts/bootstrap installs): the page renders, its tables are there, a
screenshot is not blank, and no key of the cluster appears anywhere in it."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import uuid
import zlib
from pathlib import Path

import pytest

MiB = 1 << 20
TABLES = ("status-pools", "plan-actions", "audit-findings", "verify-steps", "access-matrix",
          "access-caps")
WIDTH = 1280


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (scripts/bootstrap installs Debian's chromium)")
    return found


def _browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless chromium as root, offline: no sandbox (root), no GPU, nothing fetched."""
    return subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
         *args], capture_output=True, text=True, timeout=120)


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB/RGBA PNG, filters undone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, header = 8, b"", None
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    assert header is not None
    width, height, depth, color = header[:4]
    assert depth == 8 and color in (2, 6), header
    bpp = 3 if color == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytes(width * bpp)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = bytes(line)
        rows.append(prev)
    return width, height, rows


@pytest.fixture(scope="module")
def report(cluster, tmp_path_factory):
    """A cluster with something in its pools, a real verify report, then the HTML page."""
    _chromium()
    out = tmp_path_factory.mktemp("report")
    spec = cluster.write_spec()
    done = cluster.cli("apply", "-f", str(spec), "--yes")
    assert done.returncode == 0, done.stderr
    with cluster.admin() as conn:
        features = conn.features("layering", "exclusive_lock")
        image = str(uuid.uuid4())
        conn.rbd("create", "images", image, 8 * MiB, 23, old_format=False, features=features)
        with conn.image("images", image) as img:
            img.write(b"\x01" * MiB, 0)
            img.create_snap("snap")
            img.protect_snap("snap")
        conn.clone("images", image, "snap", "vm", f"{uuid.uuid4()}_disk", features)
        trashed = f"{uuid.uuid4()}_disk"
        conn.rbd("create", "vm", trashed, 8 * MiB, 22, old_format=False, features=features)
        conn.rbd("trash_move", "vm", trashed)
    verified = cluster.cli("verify", "-f", str(spec), "--only", "glance", "--output", "json")
    assert json.loads(verified.stdout)["passed"], verified.stdout
    (out / "verify.json").write_text(verified.stdout)
    html, svg = out / "report.html", out / "access.svg"
    proc = cluster.cli("report", "-f", str(spec), "--html", str(html), "--svg", str(svg),
                       "--verify", str(out / "verify.json"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"Wrote {html}", f"Wrote {svg}"]
    return out, html, svg


def test_the_page_is_self_contained_and_holds_no_key(cluster, report):
    _, html, svg = report
    page = html.read_text()
    assert oct(html.stat().st_mode & 0o777) == "0o644"
    secrets = cluster.keys()  # every key of `auth ls`, admin and daemons included
    assert secrets and not [k for k in secrets if k in page or k in svg.read_text()]
    assert "http://" not in page and "https://" not in page and "url(" not in page
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert "must not write to pool vm" in page  # verify's least privilege, marked


def test_chromium_renders_the_tables(report, tmp_path):
    _, html, _ = report
    proc = _browser(tmp_path, "--dump-dom", html.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    for table in TABLES:
        assert f'<table id="{table}">' in dom, table
    assert dom.count("<svg") == 1 and "client.glance" in dom
    # The rendered status table: one row per RBD pool of the spec.
    status = dom.split('<table id="status-pools">')[1].split("</table>")[0]
    assert status.count("<tr>") == 1 + 4  # header + backups, images, vm, volume
    assert "&#10003; refused" in dom or "✓ refused" in dom


def assert_screenshot_not_blank(tmp_path: Path, html: Path) -> None:
    """Headless chromium's screenshot of the page: text, borders, the graph's colours."""
    shot = tmp_path / f"{html.stem}.png"
    proc = _browser(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},2000",
                    "--hide-scrollbars", html.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, 2000)
    bpp = len(rows[0]) // width
    colours, inked = set(), 0
    for row in rows[::8]:
        for x in range(0, width * bpp, bpp * 4):
            pixel = row[x:x + 3]
            colours.add(pixel)
            inked += pixel != b"\xff\xff\xff"
    assert len(colours) > 20  # not a blank page
    assert inked > 500


def test_chromium_screenshot_is_not_blank(report, tmp_path):
    _, html, _ = report
    assert_screenshot_not_blank(tmp_path, html)
